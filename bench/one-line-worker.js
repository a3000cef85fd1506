// The runtime's own floor for the bench: a Worker that answers every request with "ok", served by
// the same launcher as the gateway (`ferry gateway serve --bare`).
export default {
  fetch: () => new Response('ok'),
};
