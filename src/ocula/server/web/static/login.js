// The login form: trades an API key for a session cookie (POST /login, JSON).
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const key = document.getElementById("key").value.trim();
  const res = await fetch("/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ key }),
  });
  if (res.ok) {
    location.assign(form.dataset.next || "/");
    return;
  }
  let detail = `HTTP ${res.status}`;
  try { detail = (await res.json()).detail || detail; } catch { /* not JSON */ }
  error.textContent = `Not logged in: ${detail}`;
  error.hidden = false;
});
