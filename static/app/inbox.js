// The agent inbox: renders the list and the open conversation from the page's state, then
// keeps both live over one websocket. Each part lives in static/app/inbox/; features plug in
// through the hooks in core.js and are imported here.

import { startAssignment } from "./inbox/assignment.js";
import { startComposer } from "./inbox/composer.js";
import { renderList } from "./inbox/list.js";
import { startPresence } from "./inbox/presence.js";
import { startPriority } from "./inbox/priority.js";
import { connect, inspect } from "./inbox/socket.js";
import { startThread } from "./inbox/thread.js";

startPresence();
startPriority(); // before the first list: it may set the order
renderList();
startThread();
startAssignment();
startComposer();
connect();
window.smartchatInbox = inspect;
