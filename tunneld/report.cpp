#include "report.hpp"

#include <tunnel/log.hpp>

#include <fmt/format.h>

namespace tunneld {
namespace wire = tunnel::wire;
using Clock = std::chrono::steady_clock;

std::string ep_str(const boost::asio::ip::tcp::endpoint& e) { return tunnel::to_string(e); }

std::string json_escape(std::string_view s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      o += '\\';
      o += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      o += fmt::format("\\u{:04x}", ch);
    } else {
      o += ch;
    }
  }
  return o;
}

namespace {

std::int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// The session counters as JSON members (no braces).
std::string session_json(const tunnel::LinkCounters& c, const tunnel::ReplayCounters& r) {
  return fmt::format(
      R"("tx_packets":{},"tx_bytes":{},"tx_frames":{},"tx_compressed":{},"drop_queue_full":{},"drop_codel":{},"drop_buffer_full":{},)"
      R"("drop_buffer_age":{},)"
      R"("drop_never_sent":{},"drop_session_ended":{},"replayed":{},"peak_buffered":{},"acked":{},)"
      R"("rx_packets":{},"rx_bytes":{},"rx_duplicates":{},"rx_rt_copies":{},"rx_missing":{},"drop_spoofed":{},)"
      R"("acks_sent":{},"acks_received":{},"tx_heartbeats":{},"rx_heartbeats":{},"drop_control":{},)"
      R"("connections":{},"resumes":{},"send_calls":{},"drop_memory":{},"rx_forged":{})",
      c.tx_packets, c.tx_bytes, c.tx_frames, c.tx_compressed, c.drop_queue_full, c.drop_codel, r.drop_full, r.drop_age, r.drop_unsent, r.drop_cleared,
      c.replayed, c.peak_buffered, r.acked, c.rx_packets, c.rx_bytes, c.rx_duplicates, c.rx_rt_copies, c.rx_missing, c.drop_spoofed,
      c.acks_sent, c.acks_received, c.heartbeats_sent, c.heartbeats_received, c.drop_control, c.connections,
      c.resumes, c.send_calls, r.drop_memory, c.rx_forged);
}

std::string conn_json(const std::optional<tunnel::ConnectionStats>& cs) {
  if (!cs) return "null";
  std::string s = fmt::format(R"({{"mptcp":{},"token":{},"rcvbuf":{},"subflows":{},"subflow":[)", cs->mptcp, cs->token,
                              cs->rcvbuf, cs->subflows);
  for (std::size_t i = 0; i < cs->subflow.size(); ++i) {
    const auto& sf = cs->subflow[i];
    s += fmt::format(
        R"({}{{"local":"{}","remote":"{}","established":{},"rtt_us":{},"bytes_sent":{},"bytes_acked":{},"bytes_received":{},"retrans":{}}})",
        i ? "," : "", ep_str(sf.local), ep_str(sf.remote), sf.state == 1, sf.rtt_us, sf.bytes_sent, sf.bytes_acked,
        sf.bytes_received, sf.total_retrans);
  }
  return s + "]}";
}

// The control counters as a JSON object.
std::string control_json(const tunnel::control::ChannelCounters& c, std::size_t pending) {
  return fmt::format(
      R"({{"sent":{},"resent":{},"acknowledged":{},"answered":{},"pending":{},"refused":{},"received":{},)"
      R"("duplicates":{},"results_sent":{},"timed_out":{},"ended":{},"results_unknown":{},"protocol_errors":{}}})",
      c.sent, c.resent, c.acknowledged, c.answered, pending, c.refused, c.received, c.duplicates, c.results_sent,
      c.timed_out, c.ended, c.results_unknown, c.protocol_errors);
}

std::string control_text(const tunnel::control::ChannelCounters& c, std::size_t pending) {
  return fmt::format("sent {} resent {} acknowledged {} answered {} pending {} refused {}  received {} duplicates {}",
                     c.sent, c.resent, c.acknowledged, c.answered, pending, c.refused, c.received, c.duplicates);
}

std::string groups_str(const std::vector<std::string>& gs, bool json) {
  std::string s;
  for (const auto& g : gs) {
    if (!s.empty()) s += json ? "," : " ";
    s += json ? "\"" + json_escape(g) + "\"" : g;
  }
  return s;
}

std::string prefixes_str(const std::vector<tunnel::Prefix>& ps, bool json) {
  std::string s;
  for (const auto& p : ps) {
    if (!s.empty()) s += json ? "," : " ";
    s += json ? "\"" + p.to_string() + "\"" : p.to_string();
  }
  return s;
}

}  // namespace

void Totals::add(const tunnel::Session& session) {
  s += session.counters();
  const auto b = session.replay_counters();
  r.drop_full += b.drop_full;
  r.drop_age += b.drop_age;
  r.drop_unsent += b.drop_unsent;
  r.drop_cleared += b.drop_cleared;
  r.drop_memory += b.drop_memory;
  r.acked += b.acked;
}

SessionReport SessionReport::of(const tunnel::Node& n, const tunnel::Session& s, const std::string& id,
                                const std::vector<tunnel::Prefix>& prefixes, const std::vector<std::string>& groups) {
  SessionReport r;
  r.groups = groups.empty() ? s.groups : groups;
  if (const auto* hub = n.control()) {
    if (const auto* c = hub->counters(s)) r.ctl = *c;
    r.ctl_pending = hub->pending(s);
    r.ctl_queued = hub->queued(s);
  }
  const auto& l0 = *s.links()[0];
  r.cpe_id = id.empty() ? s.peer_id : id;
  r.remote = l0.remote;
  r.prefixes = prefixes.empty() ? s.prefixes : prefixes;
  r.session_id = s.id();
  r.connected = s.connected();
  const auto& live = l0.core().liveness();
  r.last_rx_ms_ago = s.connected() ? ms_since(live.last_rx()) : -1;
  if (auto d = live.down_since(); d && !s.connected()) r.held_ms = ms_since(*d);
  for (const auto& l : s.links()) {
    if (!l) continue;
    ++r.links;
    if (l->connected()) ++r.links_connected;
    r.buffered_packets += l->core().buffer().packets();
    r.buffered_bytes += l->core().buffer().bytes();
    r.unsent_packets += l->core().buffer().unsent_packets();
  }
  r.c = s.counters();
  r.r = s.replay_counters();
  if (l0.fd() >= 0) r.conn = tunnel::connection_stats(l0.fd());
  return r;
}

std::vector<PathReport> PathReport::of(const tunnel::ClientPaths& paths) {
  std::vector<PathReport> v;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    PathReport p{paths.name(i), tunnel::to_string(paths.state(i)), {}};
    for (const auto& a : paths.addresses(i)) p.addresses.push_back(a.to_string());
    v.push_back(std::move(p));
  }
  return v;
}

Report Report::of(const tunnel::Node& n, const std::string& tun, const std::string& cpe_id,
                  const std::vector<tunnel::Prefix>& prefixes, const std::vector<std::string>& groups) {
  Report r(n.config().role, tun, std::string(n.state()), Clock::now() - n.started());
  r.tun = n.tun_counters();
  r.daemon = n.counters();
  r.log_dropped = tunnel::log_lines_dropped();
  r.totals.s = n.retired();
  r.totals.r = n.retired_replay();
  n.for_each_session([&](const tunnel::Session& s) {
    r.totals.add(s);
    r.sessions.push_back(SessionReport::of(n, s, cpe_id, prefixes, groups));
  });
  if (const auto* c = n.classifier()) {
    r.flows = FlowReport::of(*c, 64);
    r.classes = c->counters();
  }
  if (const auto* c = n.classifier()) {
    r.flows = FlowReport::of(*c, 64);
    r.classes = c->counters();
  }
  if (const auto* hub = n.control()) {
    r.ctl = hub->totals();
    r.ctl_pending = hub->pending_total();
    r.handlers_running = hub->handlers_running();
  }
  return r;
}

std::string Report::json() const {
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(uptime).count();
  std::string s = fmt::format(R"({{"role":"{}","tun":"{}","state":"{}","uptime_s":{},"sessions":[)", role,
                              json_escape(tun_name), state, up);
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    const auto& e = sessions[i];
    s += fmt::format(
        R"({}{{"id":"{}","session_id":"{:016x}","remote":"{}","prefixes":[{}],"groups":[{}],"state":"{}",)"
        R"("last_rx_ms_ago":{},)"
        R"("held_ms":{},"links":{},"links_connected":{},"buffered_packets":{},"buffered_bytes":{},"unsent_packets":{},)"
        R"("connection":{},"control":{},"messages_queued":{},"counters":{{{}}}}})",
        i ? "," : "", json_escape(e.cpe_id), e.session_id, json_escape(e.remote), prefixes_str(e.prefixes, true),
        groups_str(e.groups, true),
        e.connected ? "connected" : (e.session_id ? "held" : "new"), e.last_rx_ms_ago, e.held_ms, e.links,
        e.links_connected, e.buffered_packets,
        e.buffered_bytes, e.unsent_packets, conn_json(e.conn), control_json(e.ctl, e.ctl_pending), e.ctl_queued,
        session_json(e.c, e.r));
  }
  s += ']';
  if (paths) {
    s += R"(,"paths":[)";
    for (std::size_t i = 0; i < paths->size(); ++i) {
      const auto& p = (*paths)[i];
      std::string addrs;
      for (const auto& a : p.addresses) addrs += fmt::format(R"({}"{}")", addrs.empty() ? "" : ",", a);
      s += fmt::format(R"({}{{"name":"{}","state":"{}","addresses":[{}]}})", i ? "," : "", json_escape(p.name),
                       p.state, addrs);
    }
    s += ']';
  }
  const auto& d = daemon;
  s += fmt::format(
      R"(,"counters":{{"tun_rx_packets":{},"tun_tx_packets":{},"tun_writes":{},"drop_non_udp":{},"drop_malformed":{},)"
      R"("drop_tun_write":{},"drop_no_route":{},{},"handshake_failures":{},"auth_failures":{},"handshake_timeouts":{},)"
      R"("rejected_pending":{},"evicted_pending":{},"accept_errors":{},"log_suppressed":{},"log_dropped":{},)"
      R"("refused_memory":{},"memory_bytes":{},"sessions_created":{},"sessions_closed":{},"sessions_expired":{},)"
      R"("sessions_replaced":{},"path_redials":{},)"
      R"("protocol_errors":{{)",
      tun.rx_packets, tun.tx_packets, tun.writes, tun.drop_non_udp, tun.drop_malformed, tun.drop_write, d.drop_no_route,
      session_json(totals.s, totals.r), d.handshake_failures, d.auth_failures, d.handshake_timeouts,
      d.rejected_pending, d.evicted_pending, d.accept_errors, d.log_suppressed, log_dropped, d.refused_memory,
      d.memory_bytes, d.sessions_created, d.sessions_closed, d.sessions_expired, d.sessions_replaced, d.path_redials);
  for (int i = 2; i < wire::kParseStatusCount; ++i)
    s += fmt::format(R"({}"{}":{})", i > 2 ? "," : "", wire::to_string(static_cast<wire::ParseStatus>(i)),
                     totals.s.proto_errors[static_cast<std::size_t>(i)] + d.proto_errors[static_cast<std::size_t>(i)]);
  s += fmt::format(R"(}}}},"control":{},"handlers_running":{})", control_json(ctl, ctl_pending), handlers_running);
  if (flows)
    s += fmt::format(R"(,"classes":{{"realtime_packets":{},"bulk_packets":{}}},"flows":{})", classes.realtime_packets,
                     classes.bulk_packets, FlowReport::json(*flows));
  return s + "}\n";
}

std::string Report::text() const {
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(uptime).count();
  std::string s = fmt::format("role {}  tun {}  state {}  up {}s  sessions {}\n", role, tun_name, state, up,
                              sessions.size());
  for (const auto& e : sessions) {
    s += fmt::format("session {:016x}  cpe {}  remote {}  prefixes {}{}{}  {}\n", e.session_id, e.cpe_id, e.remote,
                     prefixes_str(e.prefixes, false), e.groups.empty() ? "" : "  groups ", groups_str(e.groups, false),
                     e.connected ? fmt::format("connected, last heard {} ms ago", e.last_rx_ms_ago)
                                 : fmt::format("held for {} ms", e.held_ms));
    s += fmt::format("  buffered {} packets ({} bytes, {} not yet sent)  sent {} in {} frames ({} compressed)  "
                     "received {}  replayed {}  duplicates {}  missing {}  spoofed {}  resumes {}\n",
                     e.buffered_packets, e.buffered_bytes, e.unsent_packets, e.c.tx_packets, e.c.tx_frames,
                     e.c.tx_compressed, e.c.rx_packets, e.c.replayed, e.c.rx_duplicates, e.c.rx_missing,
                     e.c.drop_spoofed, e.c.resumes);
    s += fmt::format("  control messages: {}  queued {}\n", control_text(e.ctl, e.ctl_pending), e.ctl_queued);
    if (e.conn) {
      s += fmt::format("  connection: {}  subflows established {}\n",
                       e.conn->mptcp ? "MPTCP" : "plain TCP (fallback)", e.conn->subflows);
      for (const auto& sf : e.conn->subflow)
        s += fmt::format("    subflow {} -> {}  state {}  rtt {:.1f}ms  sent {}  acked {}  received {}  retrans {}\n",
                         ep_str(sf.local), ep_str(sf.remote), sf.state == 1 ? "established" : "other",
                         sf.rtt_us / 1000.0, sf.bytes_sent, sf.bytes_acked, sf.bytes_received, sf.total_retrans);
    }
  }
  if (paths)
    for (const auto& p : *paths) {
      std::string addrs;
      for (const auto& a : p.addresses) addrs += (addrs.empty() ? "" : " ") + a;
      s += fmt::format("path {}  {}  {}\n", p.name, p.state, addrs.empty() ? "no address" : addrs);
    }
  const auto& t = totals;
  s += fmt::format("tun: read {}  written {} in {} writes  dropped: non-udp {} malformed {} tun-write {} no-route {}\n",
                   tun.rx_packets, tun.tx_packets, tun.writes, tun.drop_non_udp, tun.drop_malformed, tun.drop_write,
                   daemon.drop_no_route);
  s += fmt::format("tunnel: sent {} ({} bytes)  received {} ({} bytes)  dropped: queue-full {} codel {} buffer-full {} "
                   "buffer-age {} memory {} session-ended {} spoofed {}  duplicates {}\n",
                   t.s.tx_packets, t.s.tx_bytes, t.s.rx_packets, t.s.rx_bytes, t.s.drop_queue_full, t.s.drop_codel,
                   t.r.drop_full,
                   t.r.drop_age, t.r.drop_memory, t.r.drop_cleared, t.s.drop_spoofed, t.s.rx_duplicates);
  std::uint64_t perr = 0;
  for (std::size_t i = 0; i < t.s.proto_errors.size(); ++i) perr += t.s.proto_errors[i] + daemon.proto_errors[i];
  s += fmt::format("sessions: created {} closed {} expired {} replaced {} (paths: redials {})  handshakes refused {} (auth {}, timeout "
                   "{}, over pending cap {}, oldest dropped for a newcomer {}, over memory limit {})  protocol errors {}\n"
                   "  buffer memory {} bytes\n",
                   daemon.sessions_created, daemon.sessions_closed, daemon.sessions_expired, daemon.sessions_replaced,
                   daemon.path_redials, daemon.handshake_failures, daemon.auth_failures, daemon.handshake_timeouts, daemon.rejected_pending,
                   daemon.evicted_pending, daemon.refused_memory, perr, daemon.memory_bytes);
  s += fmt::format("control messages: {}  handlers running {}\n", control_text(ctl, ctl_pending), handlers_running);
  if (flows) {
    s += fmt::format("classes: realtime {} packets, bulk {} packets\n", classes.realtime_packets, classes.bulk_packets);
    s += FlowReport::text(*flows);
  }
  return s;
}

}  // namespace tunneld
