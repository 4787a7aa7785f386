// The node's JSON-RPC, over POST /rpc for calls and the same URL as a
// WebSocket for push subscriptions. Only the node the page came from is ever
// contacted, and only public (read-only) methods are called.

let nextId = 1;

export class RpcError extends Error {
  constructor(method, error) {
    const code = error && error.data && error.data.code ? error.data.code : String(error && error.code);
    super(`${method}: ${(error && error.message) || "error"} (${code})`);
    this.method = method;
    this.code = code;
  }
}

// Runs calls as one JSON-RPC batch (one round trip). Each entry is
// {method, params, optional}; an optional call that fails gives null instead
// of failing the whole load (e.g. a participant that never registered); a
// soft one gives its RpcError, for a page that shows why.
export async function batch(calls) {
  const body = calls.map((c) => ({ jsonrpc: "2.0", id: nextId++, method: c.method, params: c.params || {} }));
  let response;
  try {
    response = await fetch("/rpc", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new Error("the node did not answer (" + err.message + ")");
  }
  if (!response.ok) {
    throw new Error(`the node answered HTTP ${response.status}`);
  }
  const answers = await response.json();
  if (!Array.isArray(answers)) {
    throw new RpcError("batch", answers.error);
  }
  const byId = new Map(answers.map((a) => [a.id, a]));
  return calls.map((call, i) => {
    const answer = byId.get(body[i].id);
    if (answer && "result" in answer) return answer.result;
    if (call.optional) return null;
    const error = new RpcError(call.method, answer ? answer.error : { message: "no answer" });
    if (call.soft) return error;
    throw error;
  });
}

export async function call(method, params, optional = false) {
  const [result] = await batch([{ method, params, optional }]);
  return result;
}

// One WebSocket to the node, kept open for the page's life. Subscriptions
// are remembered and made again after a reconnect. A lost connection is
// retried with a growing delay; before each retry an HTTP probe checks the
// node is up, so a retry is only made when it can succeed (a failed
// WebSocket handshake would log an error in the console).
export class Live {
  constructor() {
    this.handlers = new Map(); // topic -> callback(result)
    this.bySubscription = new Map(); // subscription id -> topic
    this.pending = new Map(); // request id -> topic
    this.delay = 1000;
    this.socket = null;
    this.onstatus = () => {};
  }

  subscribe(topic, callback) {
    this.handlers.set(topic, callback);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.send(topic);
  }

  start() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/rpc`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 1000;
      this.bySubscription.clear();
      this.onstatus(true);
      for (const topic of this.handlers.keys()) this.send(topic);
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      this.onstatus(false);
      this.retry();
    });
  }

  send(topic) {
    const id = nextId++;
    this.pending.set(id, topic);
    this.socket.send(JSON.stringify({ jsonrpc: "2.0", id, method: "subscribe", params: { topic } }));
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.method === "subscription" && message.params) {
      const topic = this.bySubscription.get(message.params.subscription);
      const handler = topic && this.handlers.get(topic);
      if (handler) handler(message.params.result);
      return;
    }
    const topic = this.pending.get(message.id);
    if (topic !== undefined) {
      this.pending.delete(message.id);
      // A topic the node does not offer is left out quietly: the page still
      // works, it only updates on navigation.
      if ("result" in message) this.bySubscription.set(message.result, topic);
    }
  }

  async retry() {
    await new Promise((resolve) => setTimeout(resolve, this.delay));
    this.delay = Math.min(this.delay * 2, 30000);
    try {
      await call("node.info", {});
    } catch {
      this.retry();
      return;
    }
    this.start();
  }
}
