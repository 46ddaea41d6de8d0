// Broken channels, for those who manage channels: a banner above the inbox for each channel
// whose provider refused its credentials (from the page, and live from the socket's
// "channel.broken" notice, which also shows a toast). Saving the channel with working
// credentials in Settings clears it; the banner goes with the next page load.

import { el, format, on, state, t } from "./core.js";
import { toast } from "./toasts.js";

const shown = new Map(); // channel id → banner

function banner(channel) {
  if (shown.has(channel.channel_id)) return;
  const node = el("p", { class: "banner", role: "alert", "data-testid": "channel-broken-banner" },
    el("a", { href: channel.url }, format(t.channelBroken, { name: channel.channel_name })),
    channel.reason ? ` ${channel.reason}` : "");
  shown.set(channel.channel_id, node);
  document.querySelector("[data-inbox]")?.before(node);
}

for (const channel of state.brokenChannels || []) banner(channel);

on("message", (data) => {
  if (data.type !== "channel.broken") return;
  banner(data);
  toast(format(t.channelBroken, { name: data.channel_name }), { href: data.url, kind: "broken" });
});
