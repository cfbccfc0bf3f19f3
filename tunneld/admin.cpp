#include "admin.hpp"

#include <tunnel/control_format.hpp>
#include <tunnel/message_store.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include <charconv>
#include <iostream>
#include <limits>

namespace tunneld {
namespace asio = boost::asio;
namespace ctl = tunnel::control;
using local = asio::local::stream_protocol;

namespace {

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  std::size_t i = 0;
  while (i <= line.size()) {
    const std::size_t j = std::min(line.find(' ', i), line.size());
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool value(std::string_view tok, std::string_view key, std::string_view& v) {
  if (tok.size() <= key.size() || !tok.starts_with(key) || tok[key.size()] != '=') return false;
  v = tok.substr(key.size() + 1);
  return true;
}

template <class T>
bool number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string outcome(const ctl::SentMessage& m, bool json) {
  return fmt::format("{}\n", ctl::exit_code_for(m.targets)) + (json ? ctl::format_json(m) + "\n" : ctl::format_lines(m));
}

struct SendRequest {
  bool wait = true, json = false, all = false;
  std::chrono::milliseconds wait_for{60000};
  ctl::TargetSpec spec;
  std::string topic;
};

void handle_send(tunnel::Node& node, const std::vector<std::string_view>& t, std::vector<std::uint8_t> body,
                 const AdminReply& reply) {
  SendRequest r;
  for (std::size_t i = 1; i < t.size(); ++i) {
    std::string_view v;
    std::uint64_t ms = 0;
    if (t[i] == "nowait") r.wait = false;
    else if (t[i] == "all") r.spec.all = true;
    else if (value(t[i], "wait", v) && number(v, ms)) r.wait_for = std::chrono::milliseconds(ms);
    else if (value(t[i], "json", v)) r.json = v == "1";
    else if (value(t[i], "to", v)) r.spec.ids.emplace_back(v);
    else if (value(t[i], "group", v)) r.spec.groups.emplace_back(v);
    else if (value(t[i], "topic", v)) r.topic = v;
    else if (!value(t[i], "body", v)) return reply(fmt::format("2 bad request token '{}'\n", t[i]));
  }
  auto* hub = node.control();
  const bool cpe = node.config().role == "client";
  const bool targeted = r.spec.all || !r.spec.ids.empty() || !r.spec.groups.empty();
  if (cpe && targeted) return reply("2 on a CPE, send goes to its gateway and takes no --to, --group or --all\n");
  if (!cpe && !targeted) return reply("2 give the targets: --to ID, --group NAME or --all\n");
  std::vector<ctl::ControlHub::Target> targets;
  ctl::Resolution res;
  // The node owns its sessions and this runs on its thread: sending changes
  // only a session's control channel.
  std::vector<tunnel::Session*> sessions;
  node.for_each_session([&](const tunnel::Session& s) { sessions.push_back(const_cast<tunnel::Session*>(&s)); });
  if (cpe) {
    for (auto* s : sessions) targets.push_back({s, node.peer_name(*s)});
  } else {
    std::vector<ctl::PeerEntry> rows;
    for (auto* s : sessions) rows.push_back({s->peer_id, s->groups});
    res = ctl::resolve_targets(r.spec, rows);
    for (const auto& name : res.peers)
      for (auto* s : sessions)
        if (s->peer_id == name) targets.push_back({s, name});
  }
  if (targets.empty() && res.unknown.empty())
    return reply(fmt::format("1 no {} matched\n{}", cpe ? "session" : "CPE", r.json ? "[]\n" : ""));
  std::string error;
  const auto now = std::chrono::steady_clock::now();
  ctl::ControlHub::Refusal why{};
  const std::uint64_t id = hub->send(targets, res.unknown, r.topic, body, now, error, &why);
  if (id == 0) return reply(fmt::format("{} {}\n", why == ctl::ControlHub::Refusal::bad_request ? 2 : 1, error));
  if (!r.wait) return reply(fmt::format("0\n{}\n", ctl::format_msg_id(id)));
  hub->wait(id, now + r.wait_for, [hub, id, json = r.json, reply] {
    const ctl::SentMessage* m = hub->store().find(id);
    reply(m ? outcome(*m, json) : "1 the message's record is gone\n");
  });
}

}  // namespace

bool is_admin_request(std::string_view line, std::size_t& body_bytes) {
  const auto t = split(line);
  body_bytes = 0;
  if (t.empty() || (t[0] != "send" && t[0] != "result")) return false;
  if (t[0] == "result") return true;
  std::string_view v;
  if (!value(t.back(), "body", v) || !number(v, body_bytes) || body_bytes > ctl::kMaxControlBody)
    body_bytes = std::numeric_limits<std::size_t>::max();
  return true;
}

void admin_request(tunnel::Node& node, std::string_view line, std::vector<std::uint8_t> body, AdminReply reply) {
  const auto t = split(line);
  if (!node.control()) return reply("1 the daemon is not running yet\n");
  if (t.at(0) == "send") return handle_send(node, t, std::move(body), reply);
  bool json = false;
  std::optional<std::uint64_t> id;
  for (std::size_t i = 1; i < t.size(); ++i) {
    std::string_view v;
    if (value(t[i], "json", v)) json = v == "1";
    else if (value(t[i], "id", v)) id = ctl::parse_msg_id(v);
  }
  if (!id) return reply("2 a message id is 1-16 hex digits, not 0\n");
  const ctl::SentMessage* m = node.control()->store().find(*id);
  if (!m)
    return reply(fmt::format("1 no message {} here (results are kept for 10 minutes after the last answer)\n",
                             ctl::format_msg_id(*id)));
  reply(outcome(*m, json));
}

// ---------------------------------------------------------------- the command

namespace {

int request(const std::string& path, const std::string& line, const std::vector<std::uint8_t>& body, const char* cmd) {
  asio::io_context io;
  local::socket s(io);
  boost::system::error_code ec;
  s.connect(local::endpoint(path), ec);
  if (ec) {
    std::cerr << "tunneld " << cmd << ": cannot reach " << path << ": " << ec.message()
              << " (is tunneld running? is --socket/--tun right?)\n";
    return kExitUnreachable;
  }
  asio::write(s, std::vector<asio::const_buffer>{asio::buffer(line), asio::buffer(body)}, ec);
  std::string out;
  char buf[16384];
  for (;;) {
    const std::size_t n = s.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  const auto nl = out.find('\n');
  if (ec != asio::error::eof || nl == std::string::npos) {
    std::cerr << "tunneld " << cmd << ": the daemon ended the conversation early" << (ec ? ": " + ec.message() : "")
              << "\n";
    return kExitUnreachable;
  }
  const std::string head = out.substr(0, nl);
  int code = 1;
  const auto sp = head.find(' ');
  if (!number(std::string_view(head).substr(0, sp), code)) code = 1;
  if (sp != std::string::npos) std::cerr << "tunneld " << cmd << ": " << head.substr(sp + 1) << "\n";
  std::cout << out.substr(nl + 1) << std::flush;
  return code;
}

}  // namespace

int run_send(const SendArgs& a) {
  std::string line = a.no_wait ? "send nowait" : fmt::format("send wait={}", std::uint64_t{a.timeout_s} * 1000);
  line += a.json ? " json=1" : " json=0";
  for (const auto& id : a.to) line += " to=" + id;
  for (const auto& g : a.groups) line += " group=" + g;
  if (a.all) line += " all";
  line += fmt::format(" topic={} body={}\n", a.topic, a.body.size());
  return request(a.socket, line, a.body, "send");
}

int run_result(const std::string& socket, bool json, const std::string& msg_id) {
  return request(socket, fmt::format("result json={} id={}\n", json ? 1 : 0, msg_id), {}, "result");
}

}  // namespace tunneld
