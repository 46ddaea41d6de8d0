"""In a real Chromium: a visitor on a customer's site attaches an image with the paperclip, sees it
upload, sends it and sees its preview in the widget; a refused file says its name and why; the
agent's inbox gets the message with its file."""

from __future__ import annotations

import pytest

from helpdesk.accounts import services
from helpdesk.conversations.models import Attachment, Message
from tests.conftest import PASSWORD
from tests.test_browser import TIMEOUT_MS, CustomerSite, browser, orm, server, widget_ready  # noqa: F401
from tests.test_widget_attachments import PROGRAM, png

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHADOW = "document.querySelector('#smartchat-widget-host').shadowRoot"


def image_loaded(width: int) -> str:
    """A script true once the thread's first image has loaded, ``width`` pixels wide."""
    image = f"{SHADOW}.querySelector('[data-testid=sc-image]')"
    return f"() => {{ const i = {image}; return i && i.naturalWidth === {width}; }}"


@pytest.fixture
def files_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "attachments")},
        },
    }


def test_a_visitor_sends_an_image_and_sees_its_preview(tcast, server, browser, files_storage):  # noqa: F811
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Acme shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        ws = server.url.replace("http://", "ws://")
        # The shop's own strict policy: our script, our server for requests and images, no inline style.
        site.headers = {
            "Content-Security-Policy": f"default-src 'none'; script-src {server.url}; "
            f"connect-src {server.url} {ws}; style-src 'self'; img-src 'self' {server.url}"
        }
        site.html = (
            f'<!doctype html><html lang="en"><head><title>Shop</title></head><body><h1>Shop</h1>'
            f'<script src="{server.url}/static/widget/smartchat-widget.js" data-channel="{channel.public_key}" async>'
            f"</script></body></html>"
        )
        context = browser.new_context()
        visitor = context.new_page()
        visitor.set_default_timeout(TIMEOUT_MS)
        violations: list[str] = []
        visitor.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        visitor.goto(site.origin + "/")
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()

        # A refused file: its chip says its name and why, and it is not sent.
        with visitor.expect_file_chooser() as chooser:
            visitor.get_by_test_id("sc-attach").click()
        chooser.value.set_files({"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": PROGRAM})
        refusal = visitor.get_by_test_id("sc-upload-error")
        refusal.wait_for()
        assert "holiday.jpg" in refusal.inner_text() and "type" in refusal.inner_text()

        # The paperclip, then the picker: the chip uploads and is ready.
        with visitor.expect_file_chooser() as chooser:
            visitor.get_by_test_id("sc-attach").click()
        chooser.value.set_files({"name": "red.png", "mimeType": "image/png", "buffer": png(40, 30)})
        visitor.locator("[data-testid=sc-upload][data-status=ready]").wait_for()
        assert "red.png" in visitor.locator("[data-testid=sc-upload][data-status=ready]").inner_text()

        visitor.get_by_test_id("sc-input").fill("Here is the photo")
        visitor.get_by_test_id("sc-send").click()
        # The chips are gone; the sent message shows the image, loaded from its visitor link.
        visitor.wait_for_function(f"() => !{SHADOW}.querySelector('[data-testid=sc-upload]')")
        preview = visitor.locator("[data-testid=sc-message][data-from=visitor] [data-testid=sc-image]")
        preview.wait_for()
        visitor.wait_for_function(image_loaded(40))
        link = visitor.locator("[data-testid=sc-message][data-from=visitor] [data-testid=sc-file]")
        assert link.get_attribute("target") == "_blank"  # a click opens it full size
        assert link.get_attribute("href") == preview.get_attribute("src")
        assert violations == []

        # Stored with its message; one file, the refused one never was.
        message = orm(Message.objects.get, channel=channel, body="Here is the photo")
        assert orm(lambda: list(Attachment.objects.filter(message=message).values_list("name", flat=True))) == [
            "red.png"
        ]
        assert orm(Attachment.objects.count) == 1

        # After a reload the history shows the preview again.
        visitor.reload()
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        visitor.locator("[data-testid=sc-image]").wait_for()

        # The agent's inbox has the message, and its thread lists the file.
        agent = browser.new_context().new_page()
        agent.set_default_timeout(TIMEOUT_MS)
        agent.goto(server.url + "/login/")
        agent.fill("input[name=username]", tcast.alice.user.username)
        agent.fill("input[name=password]", PASSWORD)
        agent.click("button[type=submit]")
        agent.wait_for_url("**/inbox/**")
        agent.goto(server.url + f"/inbox/{message.conversation_id}/")
        agent.get_by_test_id("thread").get_by_text("Here is the photo").wait_for()
        thread = agent.evaluate(
            "id => fetch('/api/v1/conversations/' + id + '/messages/').then(r => r.json())", message.conversation_id
        )
        rows = thread["results"] if isinstance(thread, dict) else thread
        [files] = [row["attachments"] for row in rows if row["id"] == message.pk]
        assert [f["name"] for f in files] == ["red.png"] and files[0]["image"] is True


DROP_AND_PASTE = """([kind, name, size]) => {
  const root = document.querySelector('#smartchat-widget-host').shadowRoot;
  const data = new DataTransfer();
  // A real PNG for the pasted image; the dropped file is just big.
  const bytes = kind === 'paste' ? Uint8Array.from(atob(window.__png), c => c.charCodeAt(0)) : new Uint8Array(size);
  data.items.add(new File([bytes], name, { type: kind === 'paste' ? 'image/png' : 'text/plain' }));
  if (kind === 'drop') {
    const panel = root.querySelector('[data-testid=sc-panel]');
    panel.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
    panel.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  } else {
    const input = root.querySelector('[data-testid=sc-input]');
    input.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }
}"""


def test_files_dropped_and_pasted_in_russian(tcast, server, browser, files_storage, settings):  # noqa: F811
    import base64

    settings.ATTACHMENT_MAX_BYTES = 50_000
    with CustomerSite() as site:
        channel = orm(services.create_widget_channel, company=tcast.acme, name="Shop", allowed_origins=[site.origin])
        site.html = (
            f'<!doctype html><html lang="ru"><head><title>Магазин</title></head><body>'
            f'<script src="{server.url}/static/widget/smartchat-widget.js" data-channel="{channel.public_key}" async>'
            f"</script></body></html>"
        )
        visitor = browser.new_context().new_page()
        visitor.set_default_timeout(TIMEOUT_MS)
        visitor.goto(site.origin + "/")
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        assert visitor.get_by_test_id("sc-attach").get_attribute("title") == "Прикрепить файл"
        visitor.evaluate("b64 => { window.__png = b64; }", base64.b64encode(png(12, 8)).decode())

        # Dropped, too large: refused before it is sent anywhere, in Russian, with its name.
        visitor.evaluate(DROP_AND_PASTE, ["drop", "отчёт.txt", 60_000])
        refusal = visitor.get_by_test_id("sc-upload-error")
        refusal.wait_for()
        assert "«отчёт.txt» слишком большой" in refusal.inner_text()
        # Pasted into the input: uploaded.
        visitor.evaluate(DROP_AND_PASTE, ["paste", "image.png", 0])
        visitor.locator("[data-testid=sc-upload][data-status=ready]").wait_for()
        # The refused chip can be removed; a message of the file alone goes.
        visitor.locator("[data-testid=sc-upload]").filter(has_text="отчёт.txt").get_by_test_id(
            "sc-upload-remove"
        ).click()
        assert visitor.locator("[data-testid=sc-upload]").count() == 1
        visitor.get_by_test_id("sc-send").click()
        visitor.locator("[data-testid=sc-message][data-from=visitor] [data-testid=sc-image]").wait_for()
        visitor.wait_for_function(image_loaded(12))
        message = orm(Message.objects.get, channel=channel)
        assert message.body == ""
        assert orm(lambda: list(Attachment.objects.values_list("name", "message_id"))) == [("image.png", message.pk)]
