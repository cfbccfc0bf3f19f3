#include <tunnel/client.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_check.hpp>
#include <tunnel/path_rate.hpp>
#include <tunnel/shaper.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tunnel {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
std::string link_name(unsigned i) { return i ? fmt::format("realtime link {}", i) : std::string("tunnel"); }
}  // namespace

Client::Client(asio::io_context& io, ClientConfig cfg) : Node(io, cfg.node), ccfg_(std::move(cfg)) {
  ccfg_.links = std::clamp(ccfg_.links, 1u, hs::kMaxLinks);
}

Client::~Client() = default;

void Client::on_start() {
  session_ = std::make_unique<Session>(io_, *port_, cfg_.link, 0, events());
  if (ccfg_.servers.empty()) throw std::runtime_error("no gateway address");
  const bool managed = pm_ && !ccfg_.paths.empty();
  const unsigned links =
      managed && ccfg_.realtime_links
          ? static_cast<unsigned>(std::min<std::size_t>(1 + ccfg_.paths.size(), hs::kMaxLinks))
          : ccfg_.links;
  for (unsigned i = 0; i < links; ++i) {
    session_->link(i);
    conns_.push_back(std::make_unique<Connector>(io_));
  }
  if (pm_ && !ccfg_.paths.empty()) {
    bool v4 = false, v6 = false;
    for (const auto& s : ccfg_.servers) (s.address().is_v4() ? v4 : v6) = true;
    const FamilyPolicy policy = v4 && v6 ? FamilyPolicy::both : v4 ? FamilyPolicy::only_v4 : FamilyPolicy::only_v6;
    auto specs = ccfg_.paths;
    for (const auto& p : specs) {
      if (auto r = check_path(p.ifname, tun_ ? tun_->name() : std::string(), tun_ ? tun_->ifindex() : 0))
        throw std::runtime_error(refusal_message(p.ifname, *r));
    }
    // With a gateway address per family, a path's subflows go to every address the gateway announces.
    if (v4 && v6)
      for (auto& p : specs) p.flags |= uapi::kPmAddrFlagFullmesh;
    // A path that comes up while the tunnel is down is tried at once, not after the backoff.
    paths_.emplace(io_, *pm_, std::move(specs), policy, ccfg_.path_retry,
                   [this](std::size_t path, bool up) { path_changed(path, up); });
    paths_->on_stranded([this](std::size_t path) { path_stranded(path); });
    paths_->start();
  }
  connect(0);
}

void Client::on_stop() {
  for (auto& c : conns_) c->abandon();
  session_->close();
  if (paths_) paths_->stop();  // endpoints go before the process does
}

void Client::on_packets(TunPort::Packets pkts, Clock::time_point now) {
  for (const auto pkt : pkts) send(*session_, pkt, now);
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

void Client::path_changed(std::size_t path, bool up) {
  if (stopping_) return;
  const unsigned k = static_cast<unsigned>(1 + path);
  if (path_link(k) && k < conns_.size()) {
    Connector& r = *conns_[k];
    if (!up) {  // its realtime link goes at once; realtime continues on the other paths' links
      r.abandon();
      session_->link(k).detach();
      r.state = "waiting";
    } else if (session_->id() != 0) {
      r.attempts = 0;
      r.retry.cancel();
      connect(k);
    }
  }
  // A path that comes up while the tunnel is down is tried at once, not after the backoff.
  Connector& c = *conns_[0];
  if (!up || session_->link(0).connected()) return;
  if (std::strcmp(c.state, "connecting") == 0 && c.sock) {
    c.attempts = 0;
    c.sock->close();  // an attempt over a dead path; its handler retries in about 100 ms
  } else if (std::strcmp(c.state, "reconnecting") == 0 && !c.sock && !c.hc) {
    c.attempts = 0;
    c.retry.cancel();
    connect(0);
  }
}

// A path of the gateway's other family, up without a subflow (client_paths.hpp):
// a new bulk connection makes the gateway announce its address again. The
// link resumes on it, so nothing is lost; the realtime links are not touched.
void Client::path_stranded(std::size_t path) {
  if (stopping_ || !session_->link(0).connected() || !cfg_.mptcp) return;
  Link& l = session_->link(0);
  const auto cs = connection_stats(l.fd());
  if (!cs.mptcp) return;  // fell back to TCP: no connection would give the path a subflow
  paths_->update(cs, Clock::now(), false);
  if (paths_->state(path) != PathState::up) return;
  spdlog::info("path {}: no subflow to the gateway's other address; reconnecting {} so that the gateway announces it",
               paths_->name(path), link_name(0));
  ++dc_.path_redials;
  l.detach();
  connect(0);
}

void Client::on_stats() {
  const int fd = session_->link(0).fd();
  if (paths_ && fd >= 0 && cfg_.mptcp) paths_->update(connection_stats(fd), Clock::now(), true);
}

void Client::on_subflow_event(Link& l) {
  if (paths_ && l.index() == 0 && l.fd() >= 0) paths_->update(connection_stats(l.fd()), Clock::now(), false);
}

// The first gateway address whose family some path has an address of (all
// of them when paths are not managed here).
std::size_t Client::pick_server() const {
  if (!paths_ || ccfg_.servers.size() == 1) return 0;
  for (std::size_t k = 0; k < ccfg_.servers.size(); ++k) {
    const int fam = ccfg_.servers[k].address().is_v4() ? AF_INET : AF_INET6;
    for (std::size_t i = 0; i < paths_->size(); ++i)
      if (paths_->source(i, fam)) return k;
  }
  return 0;
}

void Client::link_failed(Session& s, Link& l, Fault why, std::string_view detail) {
  if (why == Fault::peer_closed) {  // the gateway ended the session (it is stopping)
    spdlog::warn("gateway closed session {:016x}; {} buffered packets dropped", s.id(), s.buffered_packets());
    ++dc_.sessions_closed;
    s.reset(0);
    restart_joins();
    schedule_retry(0, "session closed by the gateway");
    return;
  }
  spdlog::warn("{} to {} lost: {}{}{}", link_name(l.index()), l.remote, to_string(why),
               detail.empty() ? "" : ": ", detail);
  schedule_retry(l.index(), "connection lost");
}

// ---------------------------------------------------------------- connecting

void Client::connect(unsigned i) {
  if (stopping_) return;
  Connector& c = *conns_[i];
  if (c.sock || c.hc || session_->link(i).connected()) return;  // under way, or there
  if (i > 0 && session_->id() == 0) {  // joins wait for the session
    schedule_retry(i, "waiting for link 0");
    return;
  }
  std::optional<boost::asio::ip::address> source;
  if (i == 0) {
    server_ = pick_server();
    c.target = server();
  } else if (path_link(i)) {  // from the path's address to the gateway's address of that family
    for (const auto& sv : ccfg_.servers)
      if ((source = paths_->source(i - 1, sv.address().is_v4() ? AF_INET : AF_INET6))) {
        c.target = sv;
        break;
      }
    if (!source) {
      c.state = "waiting";  // the path is not up: path_changed() connects when it is
      return;
    }
  } else {
    c.target = server();
  }
  c.state = "connecting";
  c.sock.emplace(io_);
  const bool dual = i == 0 && cfg_.mptcp && ccfg_.servers.size() > 1;
  const tcp::endpoint target = dual ? to_v6_endpoint(c.target) : c.target;
  const int family = target.address().is_v4() ? AF_INET : AF_INET6;
  try {
    c.sock->assign(target.protocol(), dual ? open_dual_stack_mptcp_socket()
                                      : source ? open_tcp_socket(family) : open_socket(family));
  } catch (const std::exception& e) {
    c.sock.reset();
    schedule_retry(i, e.what());
    return;
  }
  if (source) {
    bind_source(c.sock->native_handle(), *source);
    // A path's realtime link takes the realtime leaf of a shaped path
    // (shaper.hpp); without shaping the priority changes nothing.
    const int prio = static_cast<int>(shaper::kRealtimePriority);
    if (::setsockopt(c.sock->native_handle(), SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio) < 0)
      spdlog::warn("{}: SO_PRIORITY: {}", link_name(i), std::strerror(errno));
  }
  if (i == 0 && paths_) {  // from a path that is up: the first subflow must leave through one that works
    const int fam = server().address().is_v4() ? AF_INET : AF_INET6;
    paths_->set_primary_family(fam);
    if (auto src = paths_->usable_source(fam)) bind_source(c.sock->native_handle(), *src);
  }
  c.timer.expires_after(ccfg_.connect_timeout);
  c.timer.async_wait([&c](const boost::system::error_code& ec) {
    if (!ec && c.sock) c.sock->close();  // abandons the attempt: its handler sees operation_aborted
  });
  c.sock->async_connect(target, [this, i](const boost::system::error_code& ec) {
    Connector& c = *conns_[i];
    c.timer.cancel();
    if (stopping_) return;
    if (ec) {
      c.sock.reset();
      schedule_retry(i, ec == asio::error::operation_aborted ? "timed out" : ec.message());
      return;
    }
    c.state = "handshaking";
    c.hc = std::make_shared<HandshakeConn>(std::move(*c.sock), to_string(c.target));
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
  if (v < ccfg_.max_version) h.capabilities |= hs::kCapNewerVersion;
  h.nonce = hs::random_nonce();
  h.resume_session = session_->id();
  h.resume_rx_dsn = l.core().rx_last();
  h.link = static_cast<std::uint8_t>(i);
  h.id = ccfg_.id;
  h.prefixes = ccfg_.prefixes;
  h.groups = ccfg_.groups;
  const SuiteBytes offer = offer_suite(!ccfg_.key.empty(), ccfg_.protection);
  h.cipher = offer.cipher;
  h.protection = offer.protection;
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
  const bool keyed = !ccfg_.key.empty();
  const SuiteBytes agreed{ack->cipher, ack->protection};
  if (const Fault sf = check_suite(v, offer_suite(keyed, ccfg_.protection), agreed, keyed, ccfg_.protection);
      sf != Fault::none)
    return handshake_failed(i, sf, fmt::format("the gateway answers protocol {} protection {}", v, ack->protection));
  std::optional<seal::LinkCrypto> crypto;
  if (const auto st = to_suite(v, agreed)) {
    try {
      crypto.emplace(seal::make_link_crypto(ccfg_.key, cn, sn, seal::Role::cpe, *st));
    } catch (const std::exception& e) {
      return handshake_failed(i, Fault::seal_failed, e.what());
    }
  } else if (keyed && i == 0) {
    spdlog::warn("{}: the gateway speaks protocol {}: frames after the handshake are not protected", link_name(i), v);
  }
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
  l.remote = to_string(c.target);
  const auto early = c.hc->leftover();
  l.attach(c.hc->take_socket(), early, ack->resumed ? ack->rx_dsn : 0, v, std::move(crypto));
  c.hc.reset();
  c.state = "connected";
  if (i > 0)
    spdlog::info("{}: joined session {:016x} via {}", link_name(i), ack->session_id, to_string(c.target));
  else if (ack->resumed)
    spdlog::info("{}: resumed session {:016x} with {} (gateway had dsn {}, we had {}; replaying {} packets)",
                 link_name(i), ack->session_id, to_string(c.target), ack->rx_dsn, l.core().rx_last(),
                 l.core().counters().replayed - replayed0);
  else
    spdlog::info("{}: session {:016x} established with {} (gateway '{}', protocol {}){}", link_name(i),
                 ack->session_id, to_string(c.target), gateway_id_.empty() ? "?" : gateway_id_, v,
                 attempts_before ? fmt::format(" after {} failed attempts", attempts_before) : "");
  attached(l, link_name(i));
  if (i == 0 && !ack->resumed && v >= 4) announce_downlink();
  if (i == 0)
    for (unsigned k = 1; k < conns_.size(); ++k)
      if (!session_->link(k).connected() && !conns_[k]->hc && !conns_[k]->sock) connect(k);
}

void Client::announce_downlink() {
  std::vector<LinkRate> rates;
  for (std::size_t p = 0; p < ccfg_.paths.size(); ++p)
    if (ccfg_.paths[p].down_bps && path_link(static_cast<unsigned>(1 + p)))
      rates.push_back({static_cast<unsigned>(1 + p), ccfg_.paths[p].down_bps});
  if (rates.empty() || !control()) return;
  const std::string body = format_downlink_rates(rates);
  const control::ControlHub::Target t{session_.get(), gateway_id_};
  std::string error;
  if (!control()->send({&t, 1}, {}, kDownlinkTopic,
                       {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()}, Clock::now(), error))
    spdlog::warn("cannot announce the paths' downlink rates: {}", error);
}

// Link 0 started a new session: the joins of the old one are void.
void Client::restart_joins() {
  for (unsigned k = 1; k < conns_.size(); ++k) {
    conns_[k]->abandon();
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
    spdlog::warn("cannot reach gateway {} on {} ({}); attempt {}, retrying in {} ms", to_string(c.target), link_name(i),
                 why, c.attempts, delay.count());
  c.retry.expires_after(delay);
  c.retry.async_wait([this, i](const boost::system::error_code& ec) {
    if (!ec) connect(i);
  });
}

}  // namespace tunnel
