"""The fake Telegram Bot API, driven only through python-telegram-bot's real ``telegram.Bot``."""

from __future__ import annotations

import asyncio
import io
import threading
import time
import warnings

import pytest
from aiohttp import web
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter

from tests.fakes.telegram import FakeTelegram, fake_telegram  # noqa: F401

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"


@pytest.fixture
def fake():
    with FakeTelegram(webhook_retry_delay=0.02) as f:
        f.add_bot(TOKEN, username="acme_bot", first_name="Acme")
        yield f


def client(fake: FakeTelegram, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=fake.api_url, base_file_url=fake.file_url)


def png(width: int = 1000, height: int = 600, color: str = "orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta one day
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else value


def push_text(fake: FakeTelegram, user: dict, text: str, **kw) -> int:
    return fake.push_update(TOKEN, fake.text_update(TOKEN, user, text, **kw))


async def test_get_me_through_the_fixture(fake_telegram):  # noqa: F811
    fake_telegram.add_bot(TOKEN, username="acme_bot", first_name="Acme")
    async with client(fake_telegram) as bot:
        me = await bot.get_me()
    assert (me.id, me.username, me.first_name, me.is_bot) == (123456, "acme_bot", "Acme", True)
    assert me.can_join_groups is True and me.can_read_all_group_messages is False


async def test_unknown_and_revoked_tokens_are_unauthorized(fake):
    with pytest.raises(InvalidToken):
        async with client(fake, "999:nope") as bot:
            await bot.get_me()
    async with client(fake) as bot:
        fake.revoke(TOKEN)
        with pytest.raises(InvalidToken, match="Unauthorized"):
            await bot.get_me()


async def test_get_updates_offsets_confirm_and_negative_offsets_forget(fake):
    ann = fake.user("Ann", username="ann")
    ids = [push_text(fake, ann, f"m{i}") for i in range(3)]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    async with client(fake) as bot:
        first = await bot.get_updates()
        assert [u.update_id for u in first] == ids
        assert [u.message.text for u in first] == ["m0", "m1", "m2"]
        # Nothing is confirmed until an offset above it is given.
        assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
        assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
        assert [u.update_id for u in await bot.get_updates()] == ids[1:]
        assert await bot.get_updates(offset=ids[2] + 1) == ()
        assert fake.pending_updates(TOKEN) == []
        more = [push_text(fake, ann, f"n{i}") for i in range(3)]
        assert more[0] == ids[2] + 1
        assert [u.update_id for u in await bot.get_updates(offset=-1)] == more[2:]
        # The negative offset forgot everything before the last one.
        assert [u.update_id for u in await bot.get_updates()] == more[2:]
        # Message ids grow per chat, shared by both directions.
        assert [u.message.message_id for u in first] == [1, 2, 3]
        sent = await bot.send_message(ann["id"], "reply")
        assert sent.message_id == 7


async def test_long_polling_returns_as_soon_as_an_update_arrives(fake):
    ann = fake.user("Ann")
    async with client(fake) as bot:
        threading.Timer(0.2, push_text, (fake, ann, "late")).start()
        started = time.monotonic()
        updates = await bot.get_updates(timeout=10)
        elapsed = time.monotonic() - started
    assert [u.message.text for u in updates] == ["late"]
    assert 0.15 < elapsed < 2


async def test_long_polling_ends_empty_at_its_timeout(fake):
    async with client(fake) as bot:
        started = time.monotonic()
        assert await bot.get_updates(timeout=1) == ()
        assert 0.9 < time.monotonic() - started < 3


async def test_a_second_poller_terminates_the_first_with_conflict(fake):
    ann = fake.user("Ann")
    async with client(fake) as first, client(fake) as second:
        waiting = asyncio.create_task(first.get_updates(timeout=10))
        await asyncio.sleep(0.2)
        threading.Timer(0.2, push_text, (fake, ann, "hi")).start()
        updates = await second.get_updates(timeout=5)
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await waiting
    assert [u.message.text for u in updates] == ["hi"]


async def test_get_updates_while_a_webhook_is_set_is_a_conflict(fake):
    async with client(fake) as bot:
        assert await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="s3cret") is True
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert info.url == "http://127.0.0.1:9/hook" and info.pending_update_count == 0
        assert await bot.delete_webhook() is True
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.get_updates() == ()
        with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
            await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="bad token!")


async def test_webhook_delivery_with_secret_retries_non_2xx_and_runs_the_reply_method(fake):
    received: list[tuple[str | None, dict]] = []
    got_two = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        if len(received) == 1:
            return web.Response(status=500)
        got_two.set()
        chat_id = received[-1][1]["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "auto"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        ann = fake.user("Ann")
        push_text(fake, ann, "before")  # dropped by drop_pending_updates
        async with client(fake) as bot:
            await bot.set_webhook(url, secret_token="s3cret-Token_1", drop_pending_updates=True)
            update_id = push_text(fake, ann, "hello")
            await asyncio.wait_for(got_two.wait(), 5)
            assert fake.wait_for(lambda f: len(f.sent) == 1, 5)
            info = await bot.get_webhook_info()
    finally:
        await runner.cleanup()
    assert [secret for secret, _ in received] == ["s3cret-Token_1", "s3cret-Token_1"]
    assert [u["update_id"] for _, u in received] == [update_id, update_id]
    assert Update.de_json(received[1][1], None).message.text == "hello"
    assert [(d.status, d.error) for d in fake.webhook_deliveries] == [
        (500, "Wrong response from the webhook: 500 Internal Server Error"),
        (200, None),
    ]
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert (fake.sent[0].text, fake.sent[0].chat_id) == ("auto", ann["id"])


async def test_webhook_gives_up_after_bounded_attempts(fake):
    fake.webhook_max_attempts = 3
    async with client(fake) as bot:
        await bot.set_webhook("http://127.0.0.1:9/nobody-listens")
        push_text(fake, fake.user("Ann"), "lost")
        assert fake.wait_for(lambda f: len(f.webhook_deliveries) == 3 and not f.pending_updates(TOKEN), 5)
        assert (await bot.get_webhook_info()).last_error_message == "Connection refused"
    assert all(d.status is None for d in fake.webhook_deliveries)


async def test_send_message_with_reply_and_inline_keyboard_is_recorded(fake):
    ann = fake.user("Ann")
    push_text(fake, ann, "question")
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Accept", callback_data="consent:yes"),
                InlineKeyboardButton("Decline", callback_data="consent:no"),
            ]
        ]
    )
    async with client(fake) as bot:
        msg = await bot.send_message(ann["id"], "Agree?", reply_markup=keyboard, reply_parameters=ReplyParameters(1))
        second = await bot.send_message(ann["id"], "again", reply_to_message_id=1)
        with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
            await bot.send_message(ann["id"], "x", reply_parameters=ReplyParameters(99))
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await bot.send_message(ann["id"], "")
    assert (msg.message_id, second.message_id) == (2, 3)
    assert msg.from_user.username == "acme_bot" and msg.chat.id == ann["id"]
    assert msg.reply_to_message.text == "question"
    assert msg.reply_markup == keyboard
    sent = fake.sent
    assert [(s.method, s.chat_id, s.text, s.reply_to_message_id) for s in sent] == [
        ("sendMessage", ann["id"], "Agree?", 1),
        ("sendMessage", ann["id"], "again", 1),
    ]
    assert sent[0].reply_markup["inline_keyboard"][0][1]["callback_data"] == "consent:no"


async def test_send_photo_and_document_uploads_are_recorded_with_their_bytes(fake):
    ann = fake.user("Ann")
    push_text(fake, ann, "hi")
    picture, pdf = png(), b"%PDF-1.4 fake pdf bytes"
    async with client(fake) as bot:
        photo_msg = await bot.send_photo(ann["id"], picture, caption="look", filename="pic.png")
        doc_msg = await bot.send_document(ann["id"], pdf, filename="invoice.pdf", caption="your invoice")
        again = await bot.send_photo(ann["id"], photo_msg.photo[-1].file_id)
        with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
            await bot.send_document(ann["id"], "no-such-file-id")
        downloaded = await (await bot.get_file(doc_msg.document.file_id)).download_as_bytearray()
    assert photo_msg.caption == "look" and (photo_msg.photo[-1].width, photo_msg.photo[-1].height) == (1000, 600)
    assert [p.width for p in photo_msg.photo] == [90, 320, 800, 1000]
    assert (doc_msg.document.file_name, doc_msg.document.mime_type) == ("invoice.pdf", "application/pdf")
    assert bytes(downloaded) == pdf
    assert again.photo[-1].file_id == photo_msg.photo[-1].file_id
    photo, doc, resend = fake.sent
    assert (photo.method, photo.caption, photo.files[0].data, photo.files[0].file_name) == (
        "sendPhoto",
        "look",
        picture,
        "pic.png",
    )
    assert (doc.method, doc.caption, doc.files[0].data, doc.files[0].mime_type) == (
        "sendDocument",
        "your invoice",
        pdf,
        "application/pdf",
    )
    assert (resend.files[0].source, resend.files[0].data) == ("file_id", picture)


async def test_get_file_downloads_the_bytes_of_a_pushed_photo(fake):
    ann = fake.user("Ann")
    picture = png(1600, 900, "teal")
    fake.push_update(TOKEN, fake.photo_update(TOKEN, ann, picture, caption="my receipt"))
    async with client(fake) as bot:
        (update,) = await bot.get_updates()
        biggest = update.message.photo[-1]
        assert (biggest.width, biggest.height) == (1600, 900)
        assert update.message.caption == "my receipt"
        file = await bot.get_file(biggest.file_id)
        assert file.file_path.startswith(fake.file_url) and file.file_size == len(picture)
        buf = io.BytesIO()
        await file.download_to_memory(buf)
        smallest = await (await bot.get_file(update.message.photo[0].file_id)).download_as_bytearray()
        with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
            await bot.get_file("nope")
    assert buf.getvalue() == picture
    assert max(Image.open(io.BytesIO(bytes(smallest))).size) == 90


async def test_blocked_chats_are_forbidden_and_unknown_chats_not_found(fake):
    ann, bob = fake.user("Ann"), fake.user("Bob")
    push_text(fake, ann, "hi")
    push_text(fake, bob, "hi")
    club = fake.group("Club")
    push_text(fake, ann, "hello club", chat=club)
    fake.block(TOKEN, ann["id"])
    fake.push_update(TOKEN, fake.my_chat_member_update(TOKEN, bob, status="kicked"))
    async with client(fake) as bot:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(ann["id"], "x")
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_photo(bob["id"], png(10, 10))
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(424242, "x")
        group_msg = await bot.send_message(club["id"], "hello all")
        fake.block(TOKEN, club["id"])
        with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
            await bot.send_message(club["id"], "x")
    assert group_msg.chat.type == "supergroup" and group_msg.message_id == 2
    assert len(fake.sent) == 1


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter's own init
async def test_faults_429_502_and_dropped_connections_are_one_shot(fake):
    ann = fake.user("Ann")
    push_text(fake, ann, "hi")
    async with client(fake) as bot:
        fake.fail_next(TOKEN, "sendMessage", 429, retry_after=7)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(ann["id"], "x")
        assert seconds(caught.value) == 7
        fake.fail_next(TOKEN, "sendMessage", 502, times=2)
        for _ in range(2):
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await bot.send_message(ann["id"], "x")
        fake.drop_next(TOKEN, "sendMessage")
        with pytest.raises(NetworkError):
            await bot.send_message(ann["id"], "dropped before")
        fake.drop_next(TOKEN, "sendMessage", after=True)
        with pytest.raises(NetworkError):
            await bot.send_message(ann["id"], "sent but unanswered")
        ok = await bot.send_message(ann["id"], "fine")
        fake.fail_next(TOKEN, "getMe", 429, retry_after=3)
        assert (await bot.send_message(ann["id"], "other methods pass")).text == "other methods pass"
        with pytest.raises(RetryAfter):
            await bot.get_me()
    assert [s.text for s in fake.sent] == ["sent but unanswered", "fine", "other methods pass"]
    assert ok.message_id == 3


async def test_callback_query_answer_and_edits(fake):
    ann = fake.user("Ann")
    push_text(fake, ann, "hi")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Accept", callback_data="yes")]])
    async with client(fake) as bot:
        consent = await bot.send_message(ann["id"], "Agree?", reply_markup=keyboard)
        fake.push_update(TOKEN, fake.callback_update(TOKEN, ann, "yes", fake.sent[0].message))
        (_, update) = await bot.get_updates()
        query = update.callback_query
        assert (query.data, query.from_user.id, query.message.message_id) == ("yes", ann["id"], consent.message_id)
        assert await bot.answer_callback_query(query.id, text="Thanks") is True
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query(query.id)
        edited = await bot.edit_message_text("Agreed, thanks", chat_id=ann["id"], message_id=consent.message_id)
        assert edited.text == "Agreed, thanks" and edited.reply_markup is None and edited.edit_date
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("Agreed, thanks", chat_id=ann["id"], message_id=consent.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
            await bot.edit_message_text("x", chat_id=ann["id"], message_id=1)
        marked = await bot.edit_message_reply_markup(ann["id"], consent.message_id, reply_markup=keyboard)
        assert marked.reply_markup == keyboard
    assert [s.method for s in fake.sent] == ["sendMessage", "editMessageText", "editMessageReplyMarkup"]


async def test_allowed_updates_filter_updates_created_later(fake):
    ann = fake.user("Ann")
    async with client(fake) as bot:
        await bot.get_updates(allowed_updates=["callback_query"])
        assert push_text(fake, ann, "ignored") == -1
        await bot.get_updates(allowed_updates=[])
        push_text(fake, ann, "seen")
        assert [u.message.text for u in await bot.get_updates()] == ["seen"]


def test_every_builder_makes_an_update_the_client_parses(fake):
    ann = fake.user("Ann", last_name="Lee", username="ann")
    club = fake.group("Club", supergroup=False)
    first = fake.text_update(TOKEN, ann, "hello")["message"]
    builders = {
        "private text": fake.text_update(TOKEN, ann, "hello"),
        "group text": fake.text_update(TOKEN, ann, "hi all", chat=club, reply_to=first),
        "start": fake.start_update(TOKEN, ann, "partner-42"),
        "photo": fake.photo_update(TOKEN, ann, png(400, 300), caption="pic"),
        "document": fake.document_update(TOKEN, ann, b"data", file_name="a.txt", caption="doc"),
        "voice": fake.voice_update(TOKEN, ann, b"OggS..."),
        "video": fake.video_update(TOKEN, ann, b"\x00\x00\x00\x18ftypmp42", caption="clip"),
        "sticker": fake.sticker_update(TOKEN, ann, b"RIFF....WEBP"),
        "edited": fake.edited_update(TOKEN, first, text="hello (edited)"),
        "callback": fake.callback_update(TOKEN, ann, "yes", first),
        "blocked": fake.my_chat_member_update(TOKEN, ann, status="kicked"),
    }
    bot = client(fake)
    parsed = {}
    for name, raw in builders.items():
        update_id = fake.push_update(TOKEN, raw)
        parsed[name] = Update.de_json({"update_id": update_id, **raw}, bot)
        assert parsed[name].update_id == update_id
        assert parsed[name].effective_user.id == ann["id"], name
    assert parsed["group text"].effective_chat.type == "group"
    assert parsed["group text"].message.from_user.first_name == "Ann"
    assert parsed["group text"].message.reply_to_message.text == "hello"
    assert parsed["start"].message.text == "/start partner-42"
    assert parsed["start"].message.entities[0].type == "bot_command"
    assert [p.width for p in parsed["photo"].message.photo] == [90, 320, 400]
    assert parsed["document"].message.document.file_name == "a.txt"
    assert parsed["document"].message.document.mime_type == "text/plain"
    assert parsed["voice"].message.voice.mime_type == "audio/ogg"
    assert parsed["video"].message.video.file_id == builders["video"]["message"]["video"]["file_id"]
    assert builders["video"]["message"]["video"]["duration"] == 5
    assert parsed["sticker"].message.sticker.emoji == "👍"
    assert parsed["edited"].edited_message.text == "hello (edited)"
    assert parsed["edited"].edited_message.edit_date is not None
    assert parsed["callback"].callback_query.data == "yes"
    member = parsed["blocked"].my_chat_member
    assert (member.old_chat_member.status, member.new_chat_member.status) == ("member", "kicked")
    assert fake.message(TOKEN, ann["id"], first["message_id"])["text"] == "hello (edited)"
