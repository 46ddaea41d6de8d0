# Shortcuts; the scripts are the real thing (they work without make too).
.PHONY: run test lint lock bench bench-search bench-reports bench-inbox messages

run:
	./scripts/start

test:
	./scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# requirements*.in (the top-level pins) -> requirements*.txt (every package pinned, with hashes).
# Existing pins are kept; after editing a pin in an .in file this changes only what it must.
LOCK = .venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	$(LOCK) --output-file=requirements.txt requirements.in
	$(LOCK) --output-file=requirements-dev.txt requirements-dev.in
	$(LOCK) --output-file=requirements-assets.txt requirements-assets.in

bench:
	.venv/bin/python bench/live_chat.py --servers 1 --visitors 200 --agents 5 --rate 50 --duration 20

bench-search:
	.venv/bin/python bench/search.py

bench-reports:
	.venv/bin/python bench/reports.py --scale $${SCALE:-1}

bench-inbox:
	.venv/bin/python bench/inbox.py --scale $${SCALE:-1}

bench-telegram:
	.venv/bin/python bench/telegram_channel.py

messages:
	.venv/bin/python manage.py makemessages -l ru --ignore=.venv --ignore=tests --ignore=bench --ignore=staticfiles --ignore=.data --no-obsolete
	.venv/bin/python manage.py compilemessages -l ru --ignore=.venv
