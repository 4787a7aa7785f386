"""The web explorer's static single-page app (``static/``): plain HTML, JS and
CSS that the node serves on its RPC port (node/explorer_http.py) and that
reads the chain through the node's own public JSON-RPC. No Python here."""
