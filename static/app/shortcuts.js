// Keyboard shortcuts on every signed-in page. "/" jumps to the search box in the top bar,
// unless one is typing somewhere (in the reply box "/" opens the canned responses).

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
  const target = event.target;
  if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
  const box = document.querySelector("[data-testid=topbar-search]");
  if (!box) return;
  event.preventDefault();
  box.focus();
  box.select();
});
