// The display page: a one-time ticket from the dashboard, then noVNC's RFB on the
// API's graphics websocket entered with that ticket.
import RFB from "./novnc/core/rfb.js";

const box = document.getElementById("screen");
const status = document.getElementById("display-status");

async function connect() {
  const answer = await fetch(box.dataset.ticket, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": box.dataset.csrf },
  });
  let body = {};
  try {
    body = await answer.json();
  } catch (err) {
    body = { message: answer.statusText };
  }
  if (!answer.ok) {
    status.textContent = "Refused (" + answer.status + "): " + (body.message || "");
    box.dataset.state = "refused";
    return;
  }
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  const url = scheme + window.location.host + box.dataset.socket +
    "?kind=vnc&ticket=" + encodeURIComponent(body.ticket);
  status.textContent = "Connecting…";
  const rfb = new RFB(box, url, { wsProtocols: ["binary"] });
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => {
    status.textContent = "Connected";
    box.dataset.state = "open";
  });
  rfb.addEventListener("disconnect", (event) => {
    status.textContent = event.detail.clean ? "Disconnected" : "Connection failed or lost";
    box.dataset.state = "closed";
  });
}

if (box) {
  connect().catch((err) => {
    status.textContent = "Error: " + err;
  });
}
