// The agent inbox: renders the list and the open conversation from the page's state, then
// keeps both live over one websocket. Each part lives in static/app/inbox/; features plug in
// through the hooks in core.js and are imported here.

import { startCanned } from "./inbox/canned.js";
import { startAssignment } from "./inbox/assignment.js";
import { startComposer } from "./inbox/composer.js";
import { showFoundMessage } from "./inbox/found.js";
import { startContactPanel } from "./inbox/contact.js";
import { startMarks } from "./inbox/marks.js";
import { renderList } from "./inbox/list.js";
import { startPresence } from "./inbox/presence.js";
import { startPriority } from "./inbox/priority.js";
import { connect, inspect } from "./inbox/socket.js";
import { startThread } from "./inbox/thread.js";
// Features: they register their hooks when imported, before anything is drawn.
import "./inbox/snooze.js";
import "./inbox/mentions.js";
import "./inbox/typing.js";
import "./inbox/readstate.js";
import "./inbox/bulk.js";
import "./inbox/delivery.js";
import "./inbox/channels.js";
import "./inbox/files.js";

startMarks(); // before the thread draws its first messages
startPresence();
startPriority(); // before the first list: it may set the order
renderList();
startThread();
startAssignment();
startComposer();
startCanned();
startContactPanel();
showFoundMessage(); // arriving from a search result: once the thread is drawn
connect();
window.smartchatInbox = inspect;
