// The lead tab is rendered by the server; this script only connects to the portal
// so that the tab's frame takes the height of its content.
(function () {
  "use strict";

  if (!window.B24Js || !window.B24Js.initializeB24Frame) {
    return;
  }
  window.B24Js.initializeB24Frame().then(function (b24) {
    document.body.setAttribute("data-frame", "connected");
    return b24.parent.fitWindow();
  }).catch(function () {
    document.body.setAttribute("data-frame", "none");
  });
})();
