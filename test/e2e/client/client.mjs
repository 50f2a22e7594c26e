// SPDX-License-Identifier: Apache-2.0
//
// sealbridge end-to-end test client: a real end-to-end-encrypted Matrix
// client (matrix-js-sdk with its Rust crypto, the same stack Element uses),
// driven by the Go tests in ../mxclient over JSON lines.
//
// Protocol: one JSON object per line.
//   stdin:  commands {"id": <any>, "cmd": "<name>", ...args}
//   stdout: replies  {"id": <same>, "ok": true, ...result}
//                    {"id": <same>, "ok": false, "error": "..."}
//           events   {"event": "ready"}
//                    {"event": "invite", "room_id", "sender"}
//                    {"event": "timeline", "room_id", "event_id", "sender",
//                     "type", "state_key"?, "content", "encrypted",
//                     "decryption_error"}
//                    {"event": "log", ...} is never used; logs go to stderr.
// Nothing but protocol lines is ever written to stdout.
//
// Commands: login, create_dm, join, send, members, invite, leave, redact,
// read_receipt, read_up_to, devices, set_autojoin, send_batch, collect, stop.
// See README.md next to this file.

// Everything the SDK (or anything else) logs must go to stderr: stdout is
// the protocol channel. This runs before the SDK is loaded (dynamic import
// below) so that loglevel binds to the redirected methods.
for (const m of ["log", "info", "debug", "trace", "warn"]) {
  console[m] = (...args) => console.error(`[${m}]`, ...args);
}

await import("fake-indexeddb/auto");
const sdk = await import("matrix-js-sdk");
const { decodeRecoveryKey } = await import("matrix-js-sdk/lib/crypto-api/index.js");
const { logger } = await import("matrix-js-sdk/lib/logger.js");

const {
  createClient,
  ClientEvent,
  RoomEvent,
  RoomMemberEvent,
  RoomStateEvent,
  MatrixEventEvent,
  EventStatus,
  Preset,
  Visibility,
} = sdk;

logger.setLevel(process.env.SEALBRIDGE_E2E_CLIENT_SDK_LOGLEVEL || "warn");

function log(...args) {
  console.error(new Date().toISOString(), "[client]", ...args);
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls cond() until truthy or timeout; returns its value. */
async function waitFor(what, cond, timeoutMs = 30000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Resolves like p, or rejects if p has not settled after ms. */
function withTimeout(p, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function errString(e) {
  if (!e) return "unknown error";
  if (e.errcode || e.data?.errcode) {
    return `${e.errcode || e.data.errcode}: ${e.data?.error || e.message} (HTTP ${e.httpStatus ?? "?"})`;
  }
  return e.message || String(e);
}

function errDetail(e) {
  return e?.stack || errString(e);
}

// ---------------------------------------------------------------------------
// state

let client = null; // MatrixClient after login
let password = null;
let autojoin = true;
// Secret-storage keys we know, by key id (from our own bootstrap, or the
// recovery key given to login); and a recovery key not yet matched to an id.
const ssssKeys = new Map();
let pendingRecoveryKey = null;
const handledInvites = new Set();
// Keys of emitted timeline states (event id + type + error), so an event is
// re-emitted exactly when what a test can observe about it changes (e.g. a
// decryption failure later turning into a successful decryption).
const emitted = new Set();
// Rooms whose latest own m.room.member event seen in the timeline is a join. The SDK's
// room.getMyMembership() can stay "invite" when the join arrives by sync while joinRoom() is still
// pending (seen against Synapse); the timeline is the ground truth.
const ownJoined = new Set();

// ---------------------------------------------------------------------------
// event reporting

function emitEvent(ev, why) {
  const eventId = ev.getId();
  // Local echoes carry a temporary "~..." id; they are reported once the
  // server has given them a real id (see LocalEchoUpdated).
  if (!eventId || !eventId.startsWith("$")) return;
  const roomId = ev.getRoomId();
  if (!roomId) return;
  const encrypted = ev.isEncrypted();
  if (encrypted && ev.isBeingDecrypted()) return; // reported when Event.decrypted fires
  if (encrypted && ev.shouldAttemptDecryption()) return; // not yet attempted
  let decryptionError = null;
  if (ev.isDecryptionFailure()) {
    const reason = ev.decryptionFailureReason || "UNKNOWN_ERROR";
    const body = ev.getContent()?.body;
    decryptionError = body ? `${reason}: ${body}` : String(reason);
  }
  // A failed decryption is reported with its wire type (m.room.encrypted)
  // and wire content, never as the SDK's placeholder m.room.message with
  // msgtype m.bad.encrypted, so it cannot be mistaken for a message.
  const type = decryptionError ? ev.getWireType() : ev.getType();
  // getOriginalContent, not getContent: the latter shows the content of a
  // later edit once the SDK has aggregated it, and we report each event as
  // it is.
  let content = decryptionError ? ev.getWireContent() : ev.getOriginalContent();
  content = { ...(content ?? {}) };
  // Relations exactly as matrix-js-sdk, and so Element, sees them: from the
  // event's cleartext wire content only (MatrixEvent.getRelation and
  // replyEventId). A relation that is only inside the ciphertext is no
  // relation to Element, so it is not reported as one (content keeps what the
  // ciphertext held, and the tests never read relations from it).
  const relation = ev.getRelation();
  const replyTo = ev.replyEventId;
  const key = `${eventId}\u0000${type}\u0000${decryptionError ?? ""}`;
  if (emitted.has(key)) return;
  emitted.add(key);
  const line = {
    event: "timeline",
    room_id: roomId,
    event_id: eventId,
    sender: ev.getSender(),
    type,
    content,
    encrypted,
    decryption_error: decryptionError,
    origin_server_ts: ev.getTs(),
  };
  const sk = ev.getStateKey();
  if (sk !== undefined && sk !== null) line.state_key = sk;
  if (type === "m.room.member" && sk === client?.getUserId()) {
    if (content.membership === "join") ownJoined.add(roomId);
    else ownJoined.delete(roomId);
  }
  if (encrypted) line.wire_type = ev.getWireType();
  if (relation) line.relation = relation;
  if (replyTo) line.reply_to = replyTo;
  const redacts = ev.event.redacts ?? content.redacts;
  if (redacts) line.redacts = redacts;
  if (ev.isRedacted()) line.redacted = true;
  log(`emit ${why}: ${roomId} ${eventId} ${type}${decryptionError ? " UTD " + decryptionError : ""}`);
  out(line);
}

async function handleInvite(roomId, sender, isDirect, inviteEventId) {
  // One report per invite event (a room can invite us again after we left).
  const key = `${roomId}\u0000${inviteEventId ?? ""}`;
  if (handledInvites.has(key)) return;
  handledInvites.add(key);
  out({ event: "invite", room_id: roomId, sender: sender ?? null, is_direct: !!isDirect });
  if (!autojoin) return;
  await autoJoin(roomId);
}

// Rooms being joined now, so that the sync sweep below does not join twice.
const joining = new Set();

async function autoJoin(roomId) {
  if (joining.has(roomId)) return;
  joining.add(roomId);
  try {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        await client.joinRoom(roomId);
        log(`auto-joined ${roomId}`);
        await waitJoined(roomId).catch((e) => log(`after joining ${roomId}: ${errString(e)}`));
        return;
      } catch (e) {
        log(`auto-join ${roomId} attempt ${attempt} failed: ${errString(e)}`);
        await sleep(500 * attempt);
      }
    }
  } finally {
    joining.delete(roomId);
  }
}

// After each sync, any room still showing us as invited is joined again: the membership listener
// can miss an invite (seen once under load against Dendrite), and five failed joins are not the
// end of it. Only an invite that has stood for 10 s is swept, so a join in flight is left alone.
const invitedSince = new Map();

function sweepInvites() {
  if (!autojoin || !client) return;
  const now = Date.now();
  for (const room of client.getRooms()) {
    if (room.getMyMembership() !== "invite" || ownJoined.has(room.roomId)) {
      invitedSince.delete(room.roomId);
      continue;
    }
    if (!invitedSince.has(room.roomId)) invitedSince.set(room.roomId, now);
    if (joining.has(room.roomId) || now - invitedSince.get(room.roomId) < 10000) continue;
    invitedSince.set(room.roomId, now);
    log(`sync sweep: still invited to ${room.roomId}; joining`);
    autoJoin(room.roomId).catch((e) => log("sweep join failed:", errString(e)));
  }
}

// Encrypted timeline events whose own Decrypted signal is listened to.
const watchedEvents = new WeakSet();

// showDecrypted treats an encrypted timeline event as Element's timeline does with the room open:
// it decrypts every event it shows (the SDK by itself decrypts only a sync's last event and those
// after the user's read receipt), and each event tile listens to its own event's Decrypted signal.
// The client-level Decrypted signal is not enough: seen against Synapse, after a limited sync (the
// user joined a room a double puppet had already joined for them), a new message was decrypted
// without the client re-emitting it, and the test never saw it. emitEvent reports each state of
// an event once, however many of these paths report it.
function showDecrypted(c, ev) {
  if (!watchedEvents.has(ev)) {
    watchedEvents.add(ev);
    ev.on(MatrixEventEvent.Decrypted, () => emitEvent(ev, "decrypted"));
  }
  if (ev.shouldAttemptDecryption()) {
    c.decryptEventIfNeeded(ev)
      .then(() => emitEvent(ev, "decrypted"))
      .catch((e) => log(`decrypting ${ev.getId()}: ${errString(e)}`));
  }
}

function wireClient(c) {
  c.on(ClientEvent.Sync, (state) => {
    if (state === "SYNCING") sweepInvites();
  });
  c.on(RoomEvent.Timeline, (ev, _room, _toStart, _removed, _data) => {
    if (ev.status !== null && ev.status !== undefined && ev.status !== EventStatus.SENT) return;
    if (ev.isEncrypted()) showDecrypted(c, ev);
    emitEvent(ev, "timeline");
  });
  c.on(RoomEvent.LocalEchoUpdated, (ev) => {
    if (ev.status === null || ev.status === undefined || ev.status === EventStatus.SENT) {
      emitEvent(ev, "local-echo");
    }
  });
  // State that came in a joined room's "state" block (before its timeline, when the timeline is
  // limited) is never a Timeline event; it is reported as well, once, like any other event.
  c.on(RoomStateEvent.Events, (ev) => emitEvent(ev, "state"));
  c.on(MatrixEventEvent.Decrypted, (ev) => {
    // Fires after every decryption attempt, successful or not, including
    // retries when a missing room key arrives later: a failure is reported
    // with its error, and a later success is reported again for the same
    // event id.
    emitEvent(ev, "decrypted");
  });
  c.on(RoomMemberEvent.Membership, (mev, member) => {
    if (member.userId !== c.getUserId() || member.membership !== "invite") return;
    const memberEvent = mev ?? member.events?.member;
    handleInvite(
      member.roomId,
      memberEvent?.getSender(),
      memberEvent?.getContent()?.is_direct,
      memberEvent?.getId(),
    ).catch((e) =>
      log("invite handling failed:", errString(e)),
    );
  });
}

// ---------------------------------------------------------------------------
// commands

const cryptoCallbacks = {
  // Called whenever the SDK needs a secret-storage key (reading or writing
  // secrets): answer from the keys we know.
  getSecretStorageKey: async ({ keys }) => {
    for (const keyId of Object.keys(keys)) {
      if (ssssKeys.has(keyId)) return [keyId, ssssKeys.get(keyId)];
    }
    if (pendingRecoveryKey) {
      const keyId = Object.keys(keys)[0];
      return [keyId, pendingRecoveryKey];
    }
    return null;
  },
  cacheSecretStorageKey: (keyId, _keyInfo, key) => {
    ssssKeys.set(keyId, key);
  },
};

async function cmdLogin({ homeserver, user, password: pw, register, secret_storage, recovery_key }) {
  if (client) throw new Error("already logged in");
  if (!homeserver || !user || !pw) throw new Error("login needs homeserver, user, password");
  password = pw;
  const t0 = Date.now();
  const anon = createClient({ baseUrl: homeserver });
  let registered = false;
  log(`login: ${register ? "registering and " : ""}logging in ${user} on ${homeserver}`);
  if (register) {
    const localpart = user.startsWith("@") ? user.slice(1).split(":")[0] : user;
    const body = { username: localpart, password: pw, inhibit_login: true };
    try {
      await anon.registerRequest(body);
      registered = true;
    } catch (e) {
      if (e.httpStatus === 401 && e.data?.flows) {
        try {
          await anon.registerRequest({ ...body, auth: { type: "m.login.dummy", session: e.data.session } });
          registered = true;
        } catch (e2) {
          if (e2.errcode !== "M_USER_IN_USE" && e2.data?.errcode !== "M_USER_IN_USE") throw e2;
          log(`user ${localpart} already exists; logging in`);
        }
      } else if (e.errcode === "M_USER_IN_USE" || e.data?.errcode === "M_USER_IN_USE") {
        log(`user ${localpart} already exists; logging in`);
      } else {
        throw e;
      }
    }
  }
  const loginResp = await anon.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password: pw,
    initial_device_display_name: "sealbridge e2e client",
  });
  anon.stopClient();
  const tLogin = Date.now();

  client = createClient({
    baseUrl: homeserver,
    userId: loginResp.user_id,
    deviceId: loginResp.device_id,
    accessToken: loginResp.access_token,
    cryptoCallbacks,
  });
  if (recovery_key) pendingRecoveryKey = decodeRecoveryKey(recovery_key);
  wireClient(client);
  log(`login: logged in as ${loginResp.user_id} device ${loginResp.device_id}; initialising Rust crypto`);
  await client.initRustCrypto({ useIndexedDB: false });
  log("login: starting client, waiting for the initial sync");
  const tCrypto = Date.now();

  const prepared = new Promise((resolve, reject) => {
    const onSync = (state, _prev, data) => {
      if (state === "PREPARED" || state === "SYNCING") {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      } else if (state === "ERROR") {
        log("sync error during startup:", errString(data?.error));
      }
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 50 });
  await withTimeout(prepared, 120000, "the initial sync");
  log("login: initial sync done; bootstrapping cross-signing");
  const tSync = Date.now();

  // Cross-signing, the way Element sets it up on a new account: bootstrap
  // with a UIA callback that first tries without auth (to learn the UIA
  // session) and then authenticates with the password.
  const crypto = client.getCrypto();
  const userId = loginResp.user_id;
  const uia = async (makeRequest) => {
    try {
      await makeRequest(null);
      return;
    } catch (e) {
      if (e.httpStatus !== 401 || !e.data?.flows) throw e;
      const session = e.data.session;
      await makeRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: userId },
        password,
        ...(session ? { session } : {}),
      });
    }
  };
  // Get an up-to-date view of our own cross-signing identity first, so that
  // an in-flight /keys/query for ourselves cannot land after a reset and
  // make the Rust crypto forget the private keys it just created.
  const hadCrossSigning = await crypto.userHasCrossSigningKeys(userId, true);
  let ready = false;
  let status = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    // An existing account whose cross-signing keys we do not have (a second
    // login; we keep no secret storage) gets a new identity, as with
    // Element's "reset cryptographic identity".
    await crypto.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: uia,
      setupNewCrossSigning: attempt > 1,
    });
    for (let i = 0; i < 20; i++) {
      ready = await crypto.isCrossSigningReady();
      status = await crypto.getDeviceVerificationStatus(userId, loginResp.device_id);
      if (ready && status?.crossSigningVerified) break;
      await sleep(100);
    }
    if (ready && status?.crossSigningVerified) break;
    log(`cross-signing not ready after bootstrap attempt ${attempt} (ready=${ready}, device cross-signed=${!!status?.crossSigningVerified}); retrying with a reset`);
  }
  // Element's "secure backup" on top, when asked: secret storage with a
  // recovery key holding the cross-signing keys, and a server-side key
  // backup. A later login given that recovery key restores the same
  // cross-signing identity instead of replacing it.
  let recoveryKeyOut = recovery_key ?? null;
  if (secret_storage && ready && status?.crossSigningVerified) {
    if (!(await crypto.isSecretStorageReady())) {
      let generated = null;
      await crypto.bootstrapSecretStorage({
        createSecretStorageKey: async () => {
          generated = await crypto.createRecoveryKeyFromPassphrase();
          return generated;
        },
        setupNewSecretStorage: !recovery_key,
        setupNewKeyBackup: !(await crypto.getKeyBackupInfo()),
      });
      if (generated) recoveryKeyOut = generated.encodedPrivateKey;
    }
    if (!(await crypto.isSecretStorageReady())) throw new Error("secret storage bootstrap finished but isSecretStorageReady() is false");
    // Make the key backup active now rather than at the next background check.
    await crypto.checkKeyBackupAndEnable();
    await waitFor("the key backup to become active", () => crypto.getActiveSessionBackupVersion(), 10000);
  }
  const tCs = Date.now();
  const timings = {
    login_ms: tLogin - t0,
    crypto_init_ms: tCrypto - tLogin,
    initial_sync_ms: tSync - tCrypto,
    cross_signing_ms: tCs - tSync,
    total_ms: tCs - t0,
  };
  log(`logged in as ${userId} device ${loginResp.device_id}`, JSON.stringify(timings));
  if (!ready) throw new Error("cross-signing bootstrap finished but isCrossSigningReady() is false");
  if (!status?.crossSigningVerified) {
    throw new Error("own device is not cross-signed after bootstrap");
  }
  return {
    user_id: userId,
    device_id: loginResp.device_id,
    registered,
    had_cross_signing: hadCrossSigning,
    recovery_key: recoveryKeyOut,
    key_backup_version: secret_storage ? ((await crypto.getActiveSessionBackupVersion()) ?? null) : null,
    cross_signing_ready: ready,
    device_cross_signed: !!status?.crossSigningVerified,
    timings,
  };
}

function needClient() {
  if (!client) throw new Error("not logged in");
  return client;
}

async function waitJoined(roomId, timeoutMs = 30000) {
  const c = needClient();
  const room = await waitFor(
    `room ${roomId} to be joined in sync`,
    () => {
      const room = c.getRoom(roomId);
      return room && (room.getMyMembership() === "join" || ownJoined.has(roomId)) ? room : null;
    },
    timeoutMs,
  );
  await repairState(room);
  return room;
}

// Rooms whose state was fetched with /state after a join (at most once each).
const repaired = new Set();

// A joined room should know its full state: its creation and its creator's membership. Under load
// Dendrite has answered the sync that joined us with the state since our last sync only, so the
// client never learnt of the bridge bot's membership (and shared no room key with it) or of the
// room's name. Such a room gets its state from /state once, as a client would on a gappy sync.
async function repairState(room) {
  if (repaired.has(room.roomId)) return;
  const create = room.currentState.getStateEvents("m.room.create", "");
  const creator = create?.getSender();
  const complete =
    create && create.getId()?.startsWith("$") && room.currentState.getMember(creator)?.membership === "join";
  if (complete) return;
  repaired.add(room.roomId);
  const raw = await client.roomState(room.roomId);
  const mapper = client.getEventMapper();
  const events = raw.map((e) => mapper({ ...e, room_id: room.roomId }));
  log(`repairing the state of ${room.roomId}: ${events.length} events from /state`);
  room.currentState.setStateEvents(events);
}

async function cmdCreateDM({ user_id, encrypted = true, name }) {
  const c = needClient();
  if (!user_id) throw new Error("create_dm needs user_id");
  const initial_state = [];
  if (encrypted) {
    initial_state.push({
      type: "m.room.encryption",
      state_key: "",
      content: { algorithm: "m.megolm.v1.aes-sha2" },
    });
  }
  const { room_id } = await c.createRoom({
    is_direct: true,
    invite: [user_id],
    preset: Preset.TrustedPrivateChat,
    visibility: Visibility.Private,
    initial_state,
    ...(name ? { name } : {}),
  });
  // m.direct account data, as Element does for DMs.
  try {
    const direct = c.getAccountData("m.direct")?.getContent() ?? {};
    const rooms = new Set(direct[user_id] ?? []);
    rooms.add(room_id);
    await c.setAccountData("m.direct", { ...direct, [user_id]: [...rooms] });
  } catch (e) {
    log("setting m.direct failed (ignored):", errString(e));
  }
  // Do not reply before sync knows the room, the invitee's membership and
  // (when encrypted) that the room is encrypted: a send into a room the
  // client does not yet know goes out in the clear, and a send before the
  // invite has come down sync encrypts the room key for nobody but
  // ourselves (/createRoom returns before sync has all its events).
  const room = await waitJoined(room_id);
  // (A "leave" counts too: the invitee refused, perhaps before sync showed the invite.)
  await waitFor(`invite of ${user_id} in ${room_id} to come down sync`, () => {
    const m = room.getMember(user_id);
    return m && (m.membership === "invite" || m.membership === "join" || m.membership === "leave");
  });
  if (encrypted) {
    await waitFor(`crypto to know ${room_id} is encrypted`, () =>
      c.getCrypto().isEncryptionEnabledInRoom(room_id),
    );
  }
  return { room_id };
}

async function cmdJoin({ room_id }) {
  const c = needClient();
  if (!room_id) throw new Error("join needs room_id");
  await c.joinRoom(room_id);
  await waitJoined(room_id);
  return { room_id };
}

async function cmdSend({ room_id, msgtype = "m.text", body, formatted_body, content: rawContent, event_type }) {
  const c = needClient();
  if (!room_id) throw new Error("send needs room_id");
  const room = await waitJoined(room_id);
  if (room.hasEncryptionStateEvent()) {
    await waitFor(`crypto to know ${room_id} is encrypted`, () =>
      c.getCrypto().isEncryptionEnabledInRoom(room_id),
    );
  }
  let content = rawContent;
  if (!content) {
    if (typeof body !== "string") throw new Error("send needs body");
    content = { msgtype, body };
    if (formatted_body) {
      content.format = "org.matrix.custom.html";
      content.formatted_body = formatted_body;
    }
  }
  const res = await c.sendEvent(room_id, event_type || "m.room.message", content);
  const ev = room.findEventById(res.event_id);
  return {
    event_id: res.event_id,
    encrypted: ev ? ev.isEncrypted() : room.hasEncryptionStateEvent(),
  };
}

// send_file uploads data (base64) and sends it as an m.image/m.file message. In an encrypted room
// the file is encrypted first as the spec says for attachments (AES-256-CTR, SHA-256 of the
// ciphertext, the key as a JWK), so the homeserver only ever stores ciphertext.
async function cmdSendFile({ room_id, msgtype = "m.file", data_b64, file_name, mimetype = "application/octet-stream", caption }) {
  const c = needClient();
  if (!room_id || !data_b64 || !file_name) throw new Error("send_file needs room_id, data_b64, file_name");
  const room = await waitJoined(room_id);
  const plain = Buffer.from(data_b64, "base64");
  const content = { msgtype, body: caption || file_name, filename: file_name, info: { mimetype, size: plain.length } };
  if (room.hasEncryptionStateEvent()) {
    const { webcrypto } = await import("node:crypto");
    const keyBytes = webcrypto.getRandomValues(new Uint8Array(32));
    const iv = new Uint8Array(16);
    webcrypto.getRandomValues(iv.subarray(0, 8)); // the counter half starts at zero
    const key = await webcrypto.subtle.importKey("raw", keyBytes, "AES-CTR", true, ["encrypt"]);
    const cipher = new Uint8Array(await webcrypto.subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, plain));
    const sha = new Uint8Array(await webcrypto.subtle.digest("SHA-256", cipher));
    const jwk = await webcrypto.subtle.exportKey("jwk", key);
    const b64 = (u8) => Buffer.from(u8).toString("base64").replace(/=+$/, "");
    const up = await c.uploadContent(Buffer.from(cipher), { type: "application/octet-stream", name: "encrypted" });
    content.file = {
      url: up.content_uri, v: "v2", iv: b64(iv), hashes: { sha256: b64(sha) },
      key: { kty: "oct", alg: "A256CTR", ext: true, k: jwk.k, key_ops: ["encrypt", "decrypt"] },
    };
  } else {
    const up = await c.uploadContent(plain, { type: mimetype, name: file_name });
    content.url = up.content_uri;
  }
  const res = await c.sendEvent(room_id, "m.room.message", content);
  return { event_id: res.event_id };
}

async function cmdMembers({ room_id }) {
  const c = needClient();
  const room = c.getRoom(room_id);
  if (!room) throw new Error(`unknown room ${room_id}`);
  return {
    members: room.getMembers().map((m) => ({
      user_id: m.userId,
      membership: m.membership,
      display_name: m.rawDisplayName ?? m.name,
    })),
  };
}

async function cmdInvite({ room_id, user_id }) {
  const c = needClient();
  await c.invite(room_id, user_id);
  return {};
}

async function cmdLeave({ room_id }) {
  const c = needClient();
  await c.leave(room_id);
  return {};
}

async function cmdRedact({ room_id, event_id, reason }) {
  const c = needClient();
  await waitJoined(room_id);
  const res = await c.redactEvent(room_id, event_id, undefined, reason ? { reason } : undefined);
  return { event_id: res.event_id };
}

// Sends a read receipt (m.read) for event_id, as a client does when the user has seen it.
async function cmdReadReceipt({ room_id, event_id }) {
  const c = needClient();
  await waitJoined(room_id);
  const path = `/rooms/${encodeURIComponent(room_id)}/receipt/m.read/${encodeURIComponent(event_id)}`;
  await c.http.authedRequest("POST", path, undefined, {});
  return {};
}

// The event user_id has read up to in room_id, as Element shows it: from real m.read receipts
// only (not the ones the SDK assumes for the user's own messages); null when there is none.
async function cmdReadUpTo({ room_id, user_id }) {
  const c = needClient();
  const room = c.getRoom(room_id);
  return { event_id: room ? room.getEventReadUpTo(user_id, true) : null };
}

// Sends a state event (m.room.topic, m.room.power_levels, ...) with state_key "" unless given.
async function cmdState({ room_id, event_type, content, state_key }) {
  const c = needClient();
  await waitJoined(room_id);
  const res = await c.sendStateEvent(room_id, event_type, content, state_key ?? "");
  return { event_id: res.event_id };
}

// The current content of a state event, from the room state the client holds.
async function cmdGetState({ room_id, event_type, state_key }) {
  const c = needClient();
  await waitJoined(room_id);
  const ev = c.getRoom(room_id)?.currentState.getStateEvents(event_type, state_key ?? "");
  return { content: ev ? ev.getContent() : null };
}

// Kicks, bans or unbans user_id (action "kick" | "ban" | "unban").
async function cmdModerate({ room_id, action, user_id, reason }) {
  const c = needClient();
  await waitJoined(room_id);
  if (action === "kick") await c.kick(room_id, user_id, reason);
  else if (action === "ban") await c.ban(room_id, user_id, reason);
  else if (action === "unban") await c.unban(room_id, user_id);
  else throw new Error(`unknown action ${action}`);
  return {};
}

// The homeserver's public room directory (room IDs and names).
async function cmdPublicRooms() {
  const c = needClient();
  const res = await c.publicRooms({ limit: 500 });
  return { rooms: (res.chunk || []).map((r) => ({ room_id: r.room_id, name: r.name || "" })) };
}

// The devices of a user as our crypto sees them (after a fresh /keys/query):
// signed_by_owner is whether the owner's self-signing key signed the device
// (what a bridge that shares keys only with cross-signed devices checks);
// cross_signing_verified additionally needs us to trust the owner's identity
// (true for our own devices once we are cross-signed).
async function cmdDevices({ user_id }) {
  const c = needClient();
  const crypto = c.getCrypto();
  const userId = user_id || c.getUserId();
  // Make sure the Rust crypto tracks the user (it does for anyone we share
  // an encrypted room with) and has current keys for them: for an untracked
  // user, getUserDeviceInfo would download the keys without storing them,
  // and the verification status would know nothing. This uses the pinned
  // SDK's internals (olmMachine, outgoingRequestsManager).
  const tracked = [...(await crypto.getOlmMachineOrThrow().trackedUsers())].some((u) => u.toString() === userId);
  if (!tracked) {
    const { UserId } = await import("@matrix-org/matrix-sdk-crypto-wasm");
    await crypto.getOlmMachineOrThrow().updateTrackedUsers([new UserId(userId)]);
  }
  await crypto.outgoingRequestsManager.doProcessOutgoingRequests();
  const hasCrossSigning = await crypto.userHasCrossSigningKeys(userId, true);
  const map = await crypto.getUserDeviceInfo([userId], true);
  const devices = [];
  for (const [deviceId, d] of map.get(userId) ?? new Map()) {
    const st = await crypto.getDeviceVerificationStatus(userId, deviceId);
    devices.push({
      device_id: deviceId,
      display_name: d.displayName ?? null,
      signed_by_owner: !!st?.signedByOwner,
      cross_signing_verified: !!st?.crossSigningVerified,
      locally_verified: !!st?.localVerified,
    });
  }
  const idStatus = await crypto.getUserVerificationStatus(userId);
  return {
    user_id: userId,
    has_cross_signing: hasCrossSigning,
    identity_verified: idStatus.isVerified(),
    devices,
  };
}

let stopping = false;
// send_batch: sends count messages "<prefix><seq>" (seq from `from`) one after the other, each
// retried with the same transaction id (so the homeserver deduplicates) until it is accepted or
// deadline_ms after its first try; a message never accepted is reported as failed, not sent.
// Returns {sent: [seq...], failed: [seq...]}. Used by the fault suite (test/faults).
async function sendOneRetrying(c, room, roomId, content, deadlineMs) {
  const txnId = c.makeTxnId();
  const deadline = Date.now() + deadlineMs;
  let lastErr;
  try {
    return (await c.sendEvent(roomId, "m.room.message", content, txnId)).event_id;
  } catch (e) {
    lastErr = e;
  }
  for (let attempt = 1; Date.now() < deadline; attempt++) {
    await sleep(Math.min(2000, 100 * attempt));
    const ev = room.getLiveTimeline().getEvents().find((e) => e.getTxnId() === txnId) ??
      room.findEventById("~" + roomId + ":" + txnId);
    if (!ev) continue;
    if (ev.getId()?.startsWith("$")) return ev.getId();
    if (ev.status !== EventStatus.NOT_SENT) continue; // still being sent or retried by the SDK
    try {
      return (await c.resendEvent(ev, room)).event_id;
    } catch (e) {
      lastErr = e;
    }
  }
  throw lastErr ?? new Error("not sent before the deadline");
}

async function cmdSendBatch({ room_id, prefix, from = 0, count, interval_ms = 0, deadline_ms = 180000 }) {
  const c = needClient();
  const room = await waitJoined(room_id);
  if (room.hasEncryptionStateEvent()) {
    await waitFor(`crypto to know ${room_id} is encrypted`, () => c.getCrypto().isEncryptionEnabledInRoom(room_id));
  }
  const sent = [];
  const failed = [];
  for (let seq = from; seq < from + count; seq++) {
    try {
      await sendOneRetrying(c, room, room_id, { msgtype: "m.text", body: `${prefix}${seq}` }, deadline_ms);
      sent.push(seq);
    } catch (e) {
      log(`send_batch ${prefix}${seq} failed: ${errString(e)}`);
      failed.push(seq);
    }
    if (interval_ms > 0) await sleep(interval_ms);
  }
  return { sent, failed };
}

// collect: pages the room's history back from its newest event with /messages (independent of
// what sync delivered: a sync across a homeserver restart can skip events) until it reaches events
// older than since_ts, decrypts every event and returns, in timeline order, the sequence numbers
// of messages whose body is "<prefix><seq>" (sender optional), plus how many events stayed
// undecryptable. Used by the fault suite (test/faults) to count deliveries.
// Dendrite's /messages can skip an event at a page boundary when two events share a depth (its
// backward token steps to the previous depth), and it caps a page at 100 events, so boundaries
// cannot be avoided: the fault suite also counts what sync delivered (its sync_only column).
async function cmdCollect({ room_id, prefix, sender, since_ts = 0, page = 100, timeout_ms = 600000 }) {
  const c = needClient();
  const deadline = Date.now() + timeout_ms;
  const mapper = c.getEventMapper();
  const newestFirst = [];
  let from = null;
  for (;;) {
    if (Date.now() > deadline) throw new Error("collect: paginating took too long");
    const res = await c.createMessagesRequest(room_id, from, page, sdk.Direction.Backward);
    const chunk = res.chunk ?? [];
    let older = false;
    for (const raw of chunk) {
      if ((raw.origin_server_ts ?? 0) < since_ts) {
        older = true;
        break;
      }
      newestFirst.push(mapper(raw));
    }
    if (older || !res.end || chunk.length === 0) break;
    from = res.end;
  }
  const seqs = [];
  let utd = 0;
  let events = 0;
  for (const ev of newestFirst.reverse()) {
    if (sender && ev.getSender() !== sender) continue;
    events++;
    if (ev.isEncrypted()) {
      await c.decryptEventIfNeeded(ev);
      if (ev.isDecryptionFailure()) await c.decryptEventIfNeeded(ev, { isRetry: true }); // a late key
      if (ev.isDecryptionFailure()) {
        utd++;
        continue;
      }
    }
    const body = ev.getType() === "m.room.message" ? ev.getContent()?.body : undefined;
    if (typeof body === "string" && body.startsWith(prefix)) {
      const n = Number(body.slice(prefix.length));
      if (Number.isInteger(n)) seqs.push(n);
    }
  }
  return { seqs, utd, events };
}

async function cmdStop() {
  stopping = true;
  if (client) {
    client.stopClient();
    try {
      client.getCrypto()?.stop?.();
    } catch {}
  }
  setTimeout(() => process.exit(0), 50);
  return {};
}

const commands = {
  login: cmdLogin,
  create_dm: cmdCreateDM,
  join: cmdJoin,
  send: cmdSend,
  send_file: cmdSendFile,
  members: cmdMembers,
  invite: cmdInvite,
  leave: cmdLeave,
  redact: cmdRedact,
  read_receipt: cmdReadReceipt,
  read_up_to: cmdReadUpTo,
  state: cmdState,
  get_state: cmdGetState,
  moderate: cmdModerate,
  public_rooms: cmdPublicRooms,
  devices: cmdDevices,
  set_autojoin: async ({ enabled }) => {
    autojoin = !!enabled;
    return { autojoin };
  },
  send_batch: cmdSendBatch,
  collect: cmdCollect,
  stop: cmdStop,
};

async function dispatch(line) {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    out({ id: null, ok: false, error: `bad JSON: ${e.message}` });
    return;
  }
  const id = msg.id ?? null;
  const fn = commands[msg.cmd];
  if (!fn) {
    out({ id, ok: false, error: `unknown command ${JSON.stringify(msg.cmd)}` });
    return;
  }
  if (msg.cmd === "login" && msg.autojoin !== undefined) autojoin = !!msg.autojoin;
  const t0 = Date.now();
  try {
    const res = await fn(msg);
    out({ id, ok: true, ...res });
    log(`${msg.cmd} ok in ${Date.now() - t0}ms`);
  } catch (e) {
    log(`${msg.cmd} failed:`, errDetail(e));
    out({ id, ok: false, error: errString(e) });
  }
}

// ---------------------------------------------------------------------------
// main loop: read JSON lines from stdin; commands run concurrently.

process.on("unhandledRejection", (e) => log("unhandled rejection:", errString(e)));

let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, nl).trim();
    buf = buf.slice(nl + 1);
    if (line) dispatch(line);
  }
});
process.stdin.on("end", () => {
  if (!stopping) {
    log("stdin closed; exiting");
    cmdStop();
  }
});

out({ event: "ready" });
