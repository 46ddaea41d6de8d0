"""In a real Chromium: an agent attaches an image by the picker and a PDF by paste, sends them,
and sees the preview and the download; the image's link works for the agent only."""

from __future__ import annotations

import pytest
from django.core.files.storage import storages

from helpdesk.conversations.models import Attachment, Message
from tests.test_attachments import PDF, PNG
from tests.test_browser import ARTIFACTS, browser, orm, server  # noqa: F401 (fixtures)
from tests.test_browser_deletion import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _files_in_a_temporary_folder(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    storages._storages.pop("attachments", None)
    yield
    storages._storages.pop("attachments", None)


PASTE_PDF = """([bytes, name]) => {
  const file = new File([new Uint8Array(bytes)], name, { type: "application/pdf" });
  const data = new DataTransfer();
  data.items.add(file);
  const box = document.querySelector("[data-testid=composer-input]");
  box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
}"""


def test_an_agent_sends_an_image_and_a_pdf_and_sees_them_in_the_thread(tcast, server, browser, tmp_path):  # noqa: F811
    bob = signed_in(browser, server, tcast.bob)
    bob.goto(f"{server.url}/inbox/{tcast.conversation.pk}/?view=all&status=open")
    bob.wait_for_selector("body[data-live=yes]")
    image = tmp_path / "upload-cat.png"
    image.write_bytes(PNG)
    with bob.expect_file_chooser() as chooser:
        bob.get_by_test_id("attach").click()
    chooser.value.set_files(str(image))
    bob.evaluate(PASTE_PDF, [list(PDF), "plan.pdf"])
    bob.wait_for_function("() => document.querySelectorAll('[data-testid=upload-chip].ready').length === 2")
    # A file the rules refuse shows its own error on its chip, and can be removed.
    bob.evaluate(PASTE_PDF, [list(b"\x7fELF" + b"\x00" * 64), "run.pdf"])
    error = bob.get_by_test_id("upload-error")
    error.wait_for()
    assert "not accepted" in error.inner_text()
    bob.locator("[data-testid=upload-chip].failed [data-testid=upload-remove]").click()
    assert bob.get_by_test_id("upload-chip").count() == 2

    bob.get_by_test_id("composer-input").fill("Here is the photo and the plan")
    bob.get_by_test_id("send").click()
    sent = bob.locator("[data-thread] .message.outbound").last
    sent.get_by_test_id("file-image").wait_for()
    bob.wait_for_function("() => document.querySelector('[data-testid=file-image] img').naturalWidth > 0")
    download = sent.get_by_test_id("file-download")
    assert "plan.pdf" in download.inner_text()
    assert bob.get_by_test_id("upload-chip").count() == 0  # sent: the chips are gone
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bob.screenshot(path=str(ARTIFACTS / "e2e-files.png"), full_page=True)

    message = orm(lambda: Message.objects.get(body="Here is the photo and the plan"))
    names = orm(lambda: sorted(Attachment.objects.filter(message=message).values_list("name", flat=True)))
    assert names == ["plan.pdf", "upload-cat.png"]
    url = sent.get_by_test_id("file-image").get_attribute("href")
    mine = bob.request.get(server.url + url)
    assert (mine.status, mine.headers["content-type"], mine.body()) == (200, "image/png", PNG)
    pdf = bob.request.get(server.url + download.get_attribute("href"))
    assert pdf.headers["content-disposition"].startswith("attachment")
    # The same link from a browser without the session: nothing.
    stranger = browser.new_context()
    assert stranger.request.get(server.url + url).status in (403, 404)
    stranger.close()
