// The console's terminal (ECS Exec): xterm.js (vendored under static/vendor/xterm)
// bridged to /tasks/{ns}/{name}/exec/ws. Protocol: binary messages are terminal
// bytes both ways; text messages are JSON control messages: {"type":"resize",
// "cols","rows"} to the server, {"type":"exit","code"} or {"type":"error",
// "message"} from it. Loaded as a file because the console's CSP forbids inline
// script.
(function () {
  "use strict";
  var el = document.getElementById("terminal");
  var form = document.getElementById("terminal-form");
  if (!el || !form || typeof Terminal === "undefined") {
    return;
  }
  document.body.classList.add("scripted");
  var status = document.getElementById("terminal-status");
  var exitCode = document.getElementById("terminal-exit-code");
  var input = document.getElementById("terminal-command");
  var term = null;
  var fit = null;
  var socket = null;

  function setStatus(state, text) {
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  function sendSize() {
    if (socket && socket.readyState === WebSocket.OPEN && term) {
      socket.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    }
  }

  function open(command) {
    if (socket) {
      socket.close();
    }
    if (!term) {
      term = new Terminal({ cursorBlink: true, convertEol: false, fontSize: 13 });
      fit = new FitAddon.FitAddon();
      term.loadAddon(fit);
      term.open(el);
      term.onData(function (data) {
        if (socket && socket.readyState === WebSocket.OPEN) {
          socket.send(new TextEncoder().encode(data));
        }
      });
      term.onResize(sendSize);
      window.addEventListener("resize", function () { fit.fit(); });
    }
    term.reset();
    fit.fit();
    exitCode.setAttribute("data-value", "");
    exitCode.textContent = "";
    var url = new URL(el.getAttribute("data-socket"), window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("command", command);
    socket = new WebSocket(url.toString());
    socket.binaryType = "arraybuffer";
    setStatus("connecting", "connecting…");
    socket.onopen = function () {
      setStatus("open", "connected");
      sendSize();
      term.focus();
    };
    socket.onmessage = function (ev) {
      if (typeof ev.data !== "string") {
        term.write(new Uint8Array(ev.data));
        return;
      }
      var msg = JSON.parse(ev.data);
      if (msg.type === "exit") {
        exitCode.setAttribute("data-value", String(msg.code));
        exitCode.textContent = "exit code " + msg.code;
        setStatus("exited", "exited");
      } else if (msg.type === "error") {
        setStatus("error", msg.message);
      }
    };
    socket.onclose = function (ev) {
      if (status.getAttribute("data-state") === "connecting") {
        setStatus("error", "the server refused the terminal (code " + ev.code + ")");
      } else if (status.getAttribute("data-state") === "open") {
        setStatus("closed", "closed");
      }
    };
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    open(input.value);
  });
})();
