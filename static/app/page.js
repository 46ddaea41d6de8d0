// Small behaviours of every page, declared in the HTML with data attributes instead of inline
// handlers (the Content-Security-Policy runs no onclick= or onsubmit=):
//   <select data-autosubmit>            sends its form when the choice changes
//   <form data-confirm="Sure?">         asks first; "Cancel" sends nothing
//   <button data-copy="#id" data-copied="Copied">  copies the element's text

document.addEventListener("change", (event) => {
  const select = event.target.closest && event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});

// Capture: the question comes before any other handler of the form sees the submit.
document.addEventListener(
  "submit",
  (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopPropagation();
    }
  },
  true,
);

document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.textContent).then(() => {
    if (button.dataset.copied) button.textContent = button.dataset.copied;
  });
});
