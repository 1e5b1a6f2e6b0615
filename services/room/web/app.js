// Mixdown demo page: publish camera + microphone with WHIP, watch the others with WHEP (server offer).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { room: "", token: "", whip: null, whipUrl: null, whep: null, whepUrl: null, timer: null };

function log(text) {
  $("log").textContent += new Date().toISOString().slice(11, 19) + " " + text + "\n";
}
function setStatus(text) { $("status").textContent = text; document.title = "Mixdown: " + text; }
function authHeaders(extra) { return Object.assign({ Authorization: "Bearer " + state.token }, extra || {}); }
function base(kind) { return "/" + kind + "/" + encodeURIComponent(state.room); }

async function waitGathering(pc) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000);
  });
}

async function getToken() {
  const pasted = $("token").value.trim();
  if (pasted) return pasted;
  const res = await fetch("/rooms-ui/dev-token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ api_key: $("apikey").value.trim(), identity: $("identity").value.trim(), room: state.room }),
  });
  if (!res.ok) throw new Error("dev token: " + res.status + " " + (await res.text()));
  return (await res.json()).token;
}

async function publish() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
  $("local").srcObject = stream;
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc);
  const res = await fetch(base("whip") + "?audio_track_name=microphone&video_track_name=camera", {
    method: "POST", headers: authHeaders({ "Content-Type": "application/sdp" }), body: pc.localDescription.sdp,
  });
  if (res.status !== 201) throw new Error("WHIP: " + res.status + " " + (await res.text()));
  state.whipUrl = res.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  state.whip = pc;
  log("publishing as " + res.headers.get("X-Participant-Sid"));
}

async function closeViewer() {
  if (state.whepUrl) {
    await fetch(state.whepUrl, { method: "DELETE", headers: authHeaders() }).catch(() => {});
  }
  if (state.whep) state.whep.close();
  state.whep = null; state.whepUrl = null;
  for (const v of document.querySelectorAll("video.remote")) v.remove();
}

async function answerOffer(pc, url, offer, etag) {
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  await pc.setLocalDescription(await pc.createAnswer());
  await waitGathering(pc);
  const headers = authHeaders({ "Content-Type": "application/sdp" });
  if (etag) headers["If-Match"] = etag;
  const patch = await fetch(url, { method: "PATCH", headers, body: pc.localDescription.sdp });
  if (patch.status !== 204) throw new Error("WHEP answer: " + patch.status);
}

async function subscribe() {
  const res = await fetch(base("whep"), { method: "POST", headers: authHeaders() });
  if (res.status === 409) return false; // nothing published by others yet
  if (res.status !== 201) throw new Error("WHEP: " + res.status + " " + (await res.text()));
  const url = res.headers.get("Location");
  const pc = new RTCPeerConnection();
  const streams = new Map();
  pc.ontrack = (ev) => {
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    if (!streams.has(stream.id)) {
      const video = document.createElement("video");
      video.className = "remote"; video.autoplay = true; video.playsInline = true; video.srcObject = stream;
      $("videos").appendChild(video);
      streams.set(stream.id, video);
      // A renegotiation that removes a publisher's m-lines removes its tracks from the stream.
      stream.onremovetrack = () => {
        if (stream.getTracks().length === 0) { video.remove(); streams.delete(stream.id); }
      };
    } else if (!stream.getTracks().includes(ev.track)) {
      stream.addTrack(ev.track);
    }
  };
  await answerOffer(pc, url, await res.text(), res.headers.get("ETag"));
  state.whep = pc; state.whepUrl = url;
  log("watching " + streams.size + " stream(s)");
  return true;
}

// The room's published tracks changed: ask for a new offer on the same session and PeerConnection
// (200 = new offer to answer, 204 = already up to date, 409 = retry at the next poll).
async function renegotiate() {
  const res = await fetch(state.whepUrl, { method: "POST", headers: authHeaders() });
  if (res.status === 204 || res.status === 409) return;
  if (res.status === 404) { await closeViewer(); return; }
  if (res.status !== 200) throw new Error("WHEP renegotiation: " + res.status + " " + (await res.text()));
  await answerOffer(state.whep, state.whepUrl, await res.text(), res.headers.get("ETag"));
  log("renegotiated the view");
}

// Follow the room's published tracks: renegotiate the WHEP session when GET reports it stale.
async function refresh() {
  try {
    if (!state.whepUrl) { await subscribe(); return; }
    const res = await fetch(state.whepUrl, { headers: authHeaders() });
    if (res.status === 404) { await closeViewer(); return; }
    const info = await res.json();
    if (info.stale) await renegotiate();
  } catch (err) { log("refresh: " + err.message); }
}

async function join(ev) {
  ev.preventDefault();
  $("joinBtn").disabled = true;
  try {
    state.room = $("room").value.trim();
    state.token = await getToken();
    setStatus("joining");
    await publish();
    setStatus("joined");
    $("leaveBtn").disabled = false;
    await refresh();
    state.timer = setInterval(refresh, 2000);
  } catch (err) {
    setStatus("error"); log(err.message); $("joinBtn").disabled = false;
  }
}

async function leave() {
  clearInterval(state.timer);
  await closeViewer();
  if (state.whipUrl) await fetch(state.whipUrl, { method: "DELETE", headers: authHeaders() }).catch(() => {});
  if (state.whip) state.whip.close();
  const local = $("local").srcObject;
  if (local) for (const t of local.getTracks()) t.stop();
  state.whip = null; state.whipUrl = null;
  setStatus("left"); $("leaveBtn").disabled = true; $("joinBtn").disabled = false;
}

$("join").addEventListener("submit", join);
$("leaveBtn").addEventListener("click", leave);
window.addEventListener("pagehide", () => {
  if (state.whipUrl) fetch(state.whipUrl, { method: "DELETE", headers: authHeaders(), keepalive: true });
});
// Automation: /rooms-ui/#room=R&token=T (or &apikey=SK…&identity=I) joins right away.
(function autoJoin() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.get("room")) return;
  $("room").value = params.get("room");
  $("token").value = params.get("token") || "";
  $("apikey").value = params.get("apikey") || "";
  $("identity").value = params.get("identity") || "";
  $("join").requestSubmit();
})();
