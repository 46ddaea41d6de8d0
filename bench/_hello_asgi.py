"""A bare ASGI app, for the "raw limit of this machine" figures printed beside Smartchat's.

HTTP: a hello-world (the Telegram bench). Websockets: every text frame received is sent to
every open socket, one after another (the live chat bench's raw fan-out and idle socket).
"""

_sockets: set = set()


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        _sockets.add(send)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                frame = {"type": "websocket.send", "text": message.get("text") or ""}
                for other in list(_sockets):
                    await other(frame)
        finally:
            _sockets.discard(send)
