// On every page: the log-out button.
import { api } from "./api.js";

const button = document.getElementById("logout");
if (button) {
  button.addEventListener("click", async () => {
    await api("/logout", { method: "POST", body: {}, site: true });
    location.assign("/login");
  });
}
