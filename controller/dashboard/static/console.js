// The serial console page: xterm.js on the dashboard's console websocket. Bytes frames
// are the guest's output; text frames are the agent's JSON control messages.
(function () {
  "use strict";
  var box = document.getElementById("terminal");
  var status = document.getElementById("console-status");
  if (!box || !window.Terminal) {
    return;
  }
  var term = new window.Terminal({ cursorBlink: true, rows: 30, cols: 100, screenReaderMode: true });
  term.open(box);
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var url = scheme + window.location.host + box.getAttribute("data-socket") +
    "?csrf=" + encodeURIComponent(box.getAttribute("data-csrf"));
  var socket = new WebSocket(url);
  var encoder = new TextEncoder();
  socket.binaryType = "arraybuffer";
  socket.onopen = function () {
    status.textContent = "Connected";
    box.setAttribute("data-state", "open");
  };
  socket.onmessage = function (event) {
    if (typeof event.data !== "string") {
      term.write(new Uint8Array(event.data));
      return;
    }
    try {
      var message = JSON.parse(event.data);
      status.textContent = message.type === "attached" ? "Attached" :
        message.type + (message.message ? ": " + message.message : "");
    } catch (err) {
      status.textContent = event.data;
    }
  };
  socket.onclose = function (event) {
    box.setAttribute("data-state", "closed");
    status.textContent = "Disconnected" + (event.reason ? ": " + event.reason :
      " (refused, or the session ended)");
  };
  term.onData(function (data) {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(encoder.encode(data));
    }
  });
  term.focus();
})();
