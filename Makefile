# Shortcuts; the scripts are the real thing (they work without make too).
.PHONY: run test lint bench bench-search messages

run:
	./scripts/start

test:
	./scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:
	.venv/bin/python bench/live_chat.py --servers 1 --visitors 200 --agents 5 --rate 50 --duration 20

bench-search:
	.venv/bin/python bench/search.py

messages:
	.venv/bin/python manage.py makemessages -l ru --ignore=.venv --ignore=tests --ignore=bench --ignore=staticfiles --ignore=.data --no-obsolete
	.venv/bin/python manage.py compilemessages -l ru --ignore=.venv
