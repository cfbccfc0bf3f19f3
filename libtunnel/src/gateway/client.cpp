#include <tunnel/client.hpp>
#include <tunnel/mptcp_uapi.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>

#include <algorithm>
#include <cmath>

namespace tunnel {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
std::string ep(const tcp::endpoint& e) {
  return e.address().is_v6() ? fmt::format("[{}]:{}", e.address().to_string(), e.port())
                             : fmt::format("{}:{}", e.address().to_string(), e.port());
}
std::string link_name(unsigned i) { return i ? fmt::format("tunnel link {}", i) : std::string("tunnel"); }
}  // namespace

Client::Client(asio::io_context& io, ClientConfig cfg) : Node(io, cfg.node), ccfg_(std::move(cfg)) {
  ccfg_.links = std::clamp(ccfg_.links, 1u, hs::kMaxLinks);
}

Client::~Client() = default;

void Client::on_start() {
  session_ = std::make_unique<Session>(io_, *port_, cfg_.link, 0, events());
  for (unsigned i = 0; i < ccfg_.links; ++i) {
    session_->link(i);
    conns_.push_back(std::make_unique<Connector>(io_));
  }
  if (pm_) {
    const int family = ccfg_.server.address().is_v4() ? AF_INET : AF_INET6;
    paths_.emplace(*pm_, ccfg_.paths, family, static_cast<std::uint32_t>(ccfg_.paths.size()), uapi::kPmMaxLimit);
  }
  connect(0);
}

void Client::on_stop() {
  for (auto& c : conns_) {
    c->retry.cancel();
    c->timer.cancel();
    if (c->sock) c->sock->close();
    if (c->hc) c->hc->close();
  }
  session_->close();
  paths_.reset();  // endpoints go before the process does
}

void Client::on_packets(TunPort::Packets pkts, Clock::time_point now) {
  for (const auto pkt : pkts) session_->enqueue(pkt, now);
  session_->flush();
}

void Client::on_tick(Clock::time_point now) {
  if (session_->tick(now)) return;
  if (session_->id() != 0 || session_->buffered_packets() > 0) {
    spdlog::warn("session {:016x} not resumed within {} ms: {} buffered packets dropped", session_->id(),
                 cfg_.link.hold.count(), session_->buffered_packets());
    ++dc_.sessions_expired;
  }
  session_->reset(0);
}

void Client::on_stats() { maintain_paths(); }

void Client::link_failed(Session& s, Link& l, Fault why, std::string_view detail) {
  if (why == Fault::peer_closed) {  // the gateway ended the session (it is stopping)
    spdlog::warn("gateway closed session {:016x}; {} buffered packets dropped", s.id(), s.buffered_packets());
    ++dc_.sessions_closed;
    s.reset(0);
    restart_joins();
    schedule_retry(0, "session closed by the gateway");
    return;
  }
  spdlog::warn("{} to {} lost: {}{}{}", link_name(l.index()), ep(ccfg_.server), to_string(why),
               detail.empty() ? "" : ": ", detail);
  schedule_retry(l.index(), "connection lost");
}

// ---------------------------------------------------------------- connecting

void Client::connect(unsigned i) {
  if (stopping_) return;
  Connector& c = *conns_[i];
  if (i > 0 && session_->id() == 0) {  // joins wait for the session
    schedule_retry(i, "waiting for link 0");
    return;
  }
  c.state = "connecting";
  c.sock.emplace(io_);
  try {
    c.sock->assign(ccfg_.server.protocol(), open_socket(ccfg_.server.address().is_v4() ? AF_INET : AF_INET6));
  } catch (const std::exception& e) {
    c.sock.reset();
    schedule_retry(i, e.what());
    return;
  }
  c.timer.expires_after(ccfg_.connect_timeout);
  c.timer.async_wait([&c](const boost::system::error_code& ec) {
    if (!ec && c.sock) c.sock->close();  // abandons the attempt: its handler sees operation_aborted
  });
  c.sock->async_connect(ccfg_.server, [this, i](const boost::system::error_code& ec) {
    Connector& c = *conns_[i];
    c.timer.cancel();
    if (stopping_) return;
    if (ec) {
      c.sock.reset();
      schedule_retry(i, ec == asio::error::operation_aborted ? "timed out" : ec.message());
      return;
    }
    c.state = "handshaking";
    c.hc = std::make_shared<HandshakeConn>(std::move(*c.sock), ep(ccfg_.server));
    c.sock.reset();
    c.hc->set_deadline(ccfg_.connect_timeout);
    c.hc->read_frame(wire::kMinVersion, ccfg_.max_version,
                     [this, i](Fault f, const wire::Frame& fr, std::string_view d) { on_challenge(i, f, fr, d); });
  });
}

void Client::handshake_failed(unsigned i, Fault f, std::string_view detail) {
  // `detail` may point into the connection's buffer: format it first.
  const std::string why = fmt::format("handshake: {}{}{}", to_string(f), detail.empty() ? "" : ": ", detail);
  Connector& c = *conns_[i];
  if (c.hc) c.hc->close();
  c.hc.reset();
  schedule_retry(i, why);
}

void Client::on_challenge(unsigned i, Fault f, const wire::Frame& fr, std::string_view detail) {
  if (f != Fault::none) return handshake_failed(i, f, detail);
  if (fr.type != wire::FrameType::challenge)
    return handshake_failed(i, Fault::unexpected_frame, fmt::format("expected CHALLENGE, got {}", wire::to_string(fr.type)));
  std::string bad;
  auto ch = hs::decode_challenge(fr.body, bad);
  if (!ch) return handshake_failed(i, Fault::malformed_hello, "bad CHALLENGE: " + bad);
  const std::uint8_t v = hs::choose_version(*ch, ccfg_.max_version);
  if (v == 0)
    return handshake_failed(i, Fault::unsupported_version,
                            fmt::format("the gateway speaks {}..{}", ch->min_version, ch->max_version));
  if (i > 0 && v < 4) return handshake_failed(i, Fault::unsupported_version, "the gateway cannot take a second link");
  Link& l = session_->link(i);
  hs::Hello h;
  h.capabilities = cfg_.port.vnet_hdr ? hs::kCapUdpGso : 0;
  h.nonce = hs::random_nonce();
  h.resume_session = session_->id();
  h.resume_rx_dsn = l.core().rx_last();
  h.link = static_cast<std::uint8_t>(i);
  h.id = ccfg_.id;
  h.prefixes = ccfg_.prefixes;
  h.groups = ccfg_.groups;
  std::vector<std::uint8_t> body;
  hs::encode(h, v, body);
  hs::sign_hello(body, v, ccfg_.key, ch->nonce);
  Connector& c = *conns_[i];
  if (!c.hc->send_frame(wire::FrameType::hello, v, body)) return handshake_failed(i, Fault::socket_error, "cannot send HELLO");
  c.hc->read_frame(v, v, [this, i, v, cn = h.nonce, sn = ch->nonce](Fault f2, const wire::Frame& fr2, std::string_view d2) {
    on_hello_ack(i, v, cn, sn, f2, fr2, d2);
  });
}

void Client::on_hello_ack(unsigned i, std::uint8_t v, const hs::Nonce& cn, const hs::Nonce& sn, Fault f,
                          const wire::Frame& fr, std::string_view detail) {
  if (f != Fault::none) return handshake_failed(i, f, detail);
  if (fr.type == wire::FrameType::error)
    return handshake_failed(i, Fault::refused,
                            std::string_view(reinterpret_cast<const char*>(fr.body.data()), fr.body.size()));
  if (fr.type != wire::FrameType::hello_ack)
    return handshake_failed(i, Fault::unexpected_frame, fmt::format("expected HELLO_ACK, got {}", wire::to_string(fr.type)));
  std::string bad;
  auto ack = hs::decode_hello_ack(fr.body, v, bad);
  if (!ack) return handshake_failed(i, Fault::malformed_hello, "bad HELLO_ACK: " + bad);
  if (!ccfg_.key.empty() && !hs::verify_hello_ack(fr.body, v, ccfg_.key, cn, sn))
    return handshake_failed(i, Fault::auth_failed, "the gateway's proof of the key is wrong");
  Connector& c = *conns_[i];
  const std::uint64_t old = session_->id();
  if (i == 0 && !ack->resumed && old != 0) {
    spdlog::warn("gateway did not resume session {:016x}: new session {:016x}; {} packets buffered for the old one "
                 "are dropped",
                 old, ack->session_id, session_->buffered_packets());
    session_->reset(ack->session_id);
    restart_joins();
  }
  if (i == 0) session_->assign_id(ack->session_id);
  version_ = v;
  gateway_id_ = ack->gateway_id;
  const int attempts_before = c.attempts;
  c.attempts = 0;
  Link& l = session_->link(i);
  const auto replayed0 = l.core().counters().replayed;
  l.remote = ep(ccfg_.server);
  const auto early = c.hc->leftover();
  l.attach(c.hc->take_socket(), early, ack->resumed ? ack->rx_dsn : 0, v);
  c.hc.reset();
  c.state = "connected";
  if (ack->resumed)
    spdlog::info("{}: resumed session {:016x} with {} (gateway had dsn {}, we had {}; replaying {} packets)",
                 link_name(i), ack->session_id, ep(ccfg_.server), ack->rx_dsn, l.core().rx_last(),
                 l.core().counters().replayed - replayed0);
  else
    spdlog::info("{}: session {:016x} established with {} (gateway '{}', protocol {}){}", link_name(i),
                 ack->session_id, ep(ccfg_.server), gateway_id_.empty() ? "?" : gateway_id_, v,
                 attempts_before ? fmt::format(" after {} failed attempts", attempts_before) : "");
  attached(l, link_name(i));
  if (i == 0)
    for (unsigned k = 1; k < conns_.size(); ++k)
      if (!session_->link(k).connected() && !conns_[k]->hc && !conns_[k]->sock) connect(k);
}

// Link 0 started a new session: the joins of the old one are void.
void Client::restart_joins() {
  for (unsigned k = 1; k < conns_.size(); ++k) {
    Connector& c = *conns_[k];
    if (c.hc) c.hc->close();
    c.hc.reset();
    if (c.sock) c.sock->close();
    session_->link(k).detach();
    schedule_retry(k, "new session");
  }
}

void Client::schedule_retry(unsigned i, std::string_view why) {
  if (stopping_) return;
  Connector& c = *conns_[i];
  c.state = "reconnecting";
  ++c.attempts;
  // Exponential backoff from 100 ms to reconnect_max, with +-25% jitter.
  const double base = std::min<double>(100.0 * std::pow(2.0, std::min(c.attempts - 1, 16)),
                                       static_cast<double>(ccfg_.reconnect_max.count()));
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  const auto delay = std::chrono::milliseconds(static_cast<long>(base * jitter(rng_)));
  if (c.attempts <= 5 || c.attempts % 30 == 0)
    spdlog::warn("cannot reach gateway {} on {} ({}); attempt {}, retrying in {} ms", ep(ccfg_.server), link_name(i),
                 why, c.attempts, delay.count());
  c.retry.expires_after(delay);
  c.retry.async_wait([this, i](const boost::system::error_code& ec) {
    if (!ec) connect(i);
  });
}

// A path whose endpoint has had no established subflow for two checks in a
// row gets its endpoint deleted and re-added, at most every path_retry: the
// in-kernel PM never re-creates a subflow that closed.
void Client::maintain_paths() {
  const int fd = session_->link(0).fd();
  if (fd < 0 || !paths_ || !cfg_.mptcp) return;
  const auto cs = connection_stats(fd);
  if (!cs.mptcp) return;
  const auto& eps = paths_->added();
  missing_.resize(eps.size(), 0);
  last_rebuild_.resize(eps.size());
  const auto now = Clock::now();
  for (std::size_t i = 0; i < eps.size(); ++i) {
    const bool up = std::any_of(cs.subflow.begin(), cs.subflow.end(), [&](const SubflowStats& s) {
      return s.state == 1 && s.local.address() == eps[i].addr;
    });
    if (up) {
      if (missing_[i] > 2) spdlog::info("path {}: subflow is back", paths_->path_name(i));
      missing_[i] = 0;
      continue;
    }
    if (++missing_[i] < 2 || now - last_rebuild_[i] < ccfg_.path_retry) continue;
    last_rebuild_[i] = now;
    try {
      paths_->rebuild(i);
      if (missing_[i] <= 3 || missing_[i] % 30 == 0)
        spdlog::info("path {}: no subflow, re-added endpoint {} (id {}) to open one", paths_->path_name(i),
                     eps[i].addr.to_string(), eps[i].id);
    } catch (const std::exception& e) {
      spdlog::warn("path {}: rebuilding its endpoint failed: {}", paths_->path_name(i), e.what());
    }
  }
}

}  // namespace tunnel
