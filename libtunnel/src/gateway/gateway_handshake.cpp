// The gateway's side of the handshake: accepting connections, the pending
// handshakes and their caps, and admitting a HELLO as a new session, a resume
// or a further link (docs/protocol.md, "Handshake", "Links").
#include <tunnel/gateway.hpp>
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/rtnl.hpp>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>

namespace tunnel {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// ---------------------------------------------------------------- handshake

void Gateway::accept_next(tcp::acceptor& acc) {
  acc.async_accept([this, &acc](const boost::system::error_code& ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (ec) {
      // EMFILE, ENFILE, ENOBUFS...: the pending connection stays queued and
      // would fail again at once. Back off 10 ms, doubling to 1 s.
      ++dc_.accept_errors;
      accept_backoff_ = std::min<std::chrono::milliseconds>(std::max(accept_backoff_ * 2, std::chrono::milliseconds(10)),
                                                            std::chrono::milliseconds(1000));
      std::uint64_t skipped = 0;
      if (refuse_log_.allow(Clock::now(), skipped))
        spdlog::warn("accept: {}; retrying in {} ms ({} accept errors so far)", ec.message(), accept_backoff_.count(),
                     dc_.accept_errors);
      dc_.log_suppressed += skipped;
      rearm_accept(acc, accept_backoff_);
      return;
    }
    accept_backoff_ = std::chrono::milliseconds(0);
    boost::system::error_code pec;
    const auto peer = s.remote_endpoint(pec);
    start_handshake(std::move(s), pec ? std::string("?") : to_string(unmapped(peer)));
    accept_next(acc);
  });
}

void Gateway::rearm_accept(tcp::acceptor& acc, std::chrono::milliseconds delay) {
  auto t = std::make_shared<asio::steady_timer>(io_, delay);
  t->async_wait([this, t, &acc](const boost::system::error_code& ec) {
    if (!ec && !stopping_ && acc.is_open()) accept_next(acc);
  });
}

namespace {
// The key per-source caps count by: an IPv4 address, an IPv6 /64.
std::string source_key(const tcp::socket& s) {
  boost::system::error_code ec;
  auto e = s.remote_endpoint(ec);
  if (ec) return "?";
  auto a = e.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v4()) return a.to_string();
  auto b = a.to_v6().to_bytes();
  std::fill(b.begin() + 8, b.end(), 0);
  return asio::ip::address_v6(b).to_string() + "/64";
}
}  // namespace

void Gateway::unpend(const ConnPtr& hc) {
  auto it = pending_.find(hc);
  if (it == pending_.end()) return;
  auto c = per_source_.find(it->second);
  if (c != per_source_.end() && --c->second == 0) per_source_.erase(c);
  pending_.erase(it);
}

void Gateway::evict_oldest(const std::string* source) {
  const ConnPtr* oldest = nullptr;
  for (const auto& [hc, src] : pending_)
    if ((!source || src == *source) && (!oldest || hc->started() < (*oldest)->started())) oldest = &hc;
  if (!oldest) return;
  const ConnPtr victim = *oldest;
  ++dc_.evicted_pending;
  std::uint64_t skipped = 0;
  if (refuse_log_.allow(Clock::now(), skipped))
    spdlog::warn("handshake from {} dropped for a newcomer: {} handshakes pending (--max-pending{}); {} dropped so far",
                 victim->peer(), pending_.size(), source ? "-per-source" : "", dc_.evicted_pending);
  dc_.log_suppressed += skipped;
  victim->close();
  unpend(victim);
}

void Gateway::start_handshake(tcp::socket s, std::string peer) {
  std::string src = source_key(s);
  if (per_source_.count(src) && per_source_[src] >= gcfg_.max_pending_per_source) evict_oldest(&src);
  if (pending_.size() >= gcfg_.max_pending) evict_oldest(nullptr);
  if (pending_.size() >= gcfg_.max_pending) {  // max_pending 0
    ++dc_.rejected_pending;
    return;  // the socket closes here
  }
  auto hc = std::make_shared<HandshakeConn>(std::move(s), std::move(peer));
  ++per_source_[src];
  pending_.emplace(hc, std::move(src));
  hc->set_deadline(gcfg_.handshake_timeout);
  hs::Challenge ch{hs::random_nonce(), wire::kMinVersion, gcfg_.max_version};
  std::vector<std::uint8_t> body;
  hs::encode(ch, body);
  if (!hc->send_frame(wire::FrameType::challenge, wire::kMinVersion, body)) {
    refuse(hc, Fault::socket_error, "cannot send the challenge", wire::kMinVersion);
    return;
  }
  hc->read_frame(wire::kMinVersion, gcfg_.max_version,
                 [this, hc, n = ch.nonce](Fault f, const wire::Frame& fr, std::string_view detail) {
                   on_hello(hc, n, f, fr, detail);
                 });
}

void Gateway::refuse(const ConnPtr& hc, Fault why, const std::string& detail, std::uint8_t version) {
  std::uint64_t skipped = 0;
  if (refuse_log_.allow(Clock::now(), skipped))
    spdlog::warn("handshake from {} failed: {}{}{}{}", hc->peer(), to_string(why), detail.empty() ? "" : ": ", detail,
                 skipped ? fmt::format(" ({} similar lines suppressed)", skipped) : "");
  dc_.log_suppressed += skipped;
  ++dc_.handshake_failures;
  if (why == Fault::auth_failed) ++dc_.auth_failures;
  if (why == Fault::handshake_timeout) ++dc_.handshake_timeouts;
  if (const auto reason = wire_reason(why); !reason.empty()) hc->send_error(reason, version);
  hc->close();
  unpend(hc);
}

void Gateway::on_hello(const ConnPtr& hc, const hs::Nonce& server_nonce, Fault f, const wire::Frame& fr,
                       std::string_view detail) {
  if (f != Fault::none) {
    if (f == Fault::unsupported_version || f == Fault::malformed_frame)
      ++dc_.proto_errors[static_cast<std::size_t>(hc->parse_status())];
    refuse(hc, f, std::string(detail), wire::kMinVersion);
    return;
  }
  const std::uint8_t v = fr.version;
  if (fr.type != wire::FrameType::hello) {
    refuse(hc, Fault::unexpected_frame, fmt::format("expected HELLO, got {}", wire::to_string(fr.type)), v);
    return;
  }
  std::string bad;
  auto hello = hs::decode_hello(fr.body, v, bad);
  if (!hello) {
    refuse(hc, Fault::malformed_hello, bad, v);
    return;
  }
  hs::KeyView key;
  if (gcfg_.keys) {
    // An unknown id is checked against a decoy key: the same work and the same answer as a wrong proof.
    const bool known = gcfg_.keys->find(hello->id) != nullptr;
    key = gcfg_.keys->key_or_decoy(hello->id);
    if (!hs::verify_hello(fr.body, v, key, server_nonce) || !known) {
      refuse(hc, Fault::auth_failed,
             known ? fmt::format("CPE '{}': wrong proof of the key", hello->id)
                   : fmt::format("unknown CPE id '{}'", hello->id),
             v);
      return;
    }
    if (hello->link == 0 &&
        gcfg_.keys->admit(hello->id, hello->prefixes, gcfg_.allow_unbound_prefixes) != keys::Admission::allowed) {
      refuse(hc, Fault::prefix_not_allowed, fmt::format("CPE '{}' claims prefixes outside its binding", hello->id), v);
      return;
    }
    if (hello->link == 0 && gcfg_.keys->admit_groups(hello->id, hello->groups) != keys::Admission::allowed) {
      refuse(hc, Fault::group_not_allowed,
             fmt::format("CPE '{}' announces groups {} outside its binding", hello->id, hello->groups), v);
      return;
    }
  }
  if ((hello->capabilities & hs::kCapNewerVersion) && v < gcfg_.max_version) {
    refuse(hc, Fault::unsupported_version,
           fmt::format("CPE '{}' speaks a newer version than {} but was not offered it: the CHALLENGE was altered",
                       hello->id, v),
           v);
    return;
  }
  const SuiteChoice suite = answer_suite(v, {hello->cipher, hello->protection}, !key.empty(), gcfg_.protection);
  if (suite.fault != Fault::none) {
    refuse(hc, suite.fault, fmt::format("CPE '{}' (protocol {}) offers no frame protection", hello->id, v), v);
    return;
  }
  if (hello->link > 0) {  // a join: the session must be this CPE's current one
    auto it = sessions_.find(hello->resume_session);
    if (it == sessions_.end() || it->second->peer_id != hello->id) {
      refuse(hc, Fault::unknown_session,
             fmt::format("CPE '{}': link {} names session {:016x}", hello->id, hello->link, hello->resume_session), v);
      return;
    }
    Session& s = *it->second;
    Link& l = s.link(hello->link);
    if (accept_link(hc, s, l, *hello, v, key, server_nonce, true, suite.bytes)) {
      spdlog::info("CPE '{}' from {}: link {} joined session {:016x}", s.peer_id, l.remote, l.index(), s.id());
      shape_link(s, l);
    }
    return;
  }
  std::uint64_t fresh = 0;
  while (fresh == 0 || sessions_.count(fresh)) fresh = hs::random_u64();
  const auto adm = table_.admit(hello->id, hello->resume_session, hello->prefixes, fresh);
  if (adm.verdict == CpeTable::Verdict::reject) {
    refuse(hc, adm.error, fmt::format("CPE '{}'", hello->id), v);
    return;
  }
  if (adm.verdict != CpeTable::Verdict::resume && gcfg_.memory_limit &&
      memory_ + GatewayConfig::kSessionEstimate > gcfg_.memory_limit) {
    ++dc_.refused_memory;
    refuse(hc, Fault::gateway_full, fmt::format("CPE '{}': over the memory limit", hello->id), v);
    return;
  }
  if (adm.replaces) destroy(adm.replaces, "replaced by a new session of the same CPE", dc_.sessions_replaced);
  const bool resumed = adm.verdict == CpeTable::Verdict::resume;
  auto& slot = sessions_[adm.session_id];
  if (!resumed) {
    slot = std::make_unique<Session>(io_, *port_, cfg_.link, adm.session_id, events());
    ++dc_.sessions_created;
    memory_ += GatewayConfig::kSessionEstimate;  // until the next tick sums it
  }
  Session& s = *slot;
  s.peer_id = hello->id;
  s.prefixes = hello->prefixes;
  s.groups = hello->groups;
  s.check_sources(hello->prefixes);
  table_.insert(adm.session_id, hello->id, hello->prefixes, &s);
  Link& l = s.link(0);
  const auto replayed0 = s.counters().replayed;
  if (!accept_link(hc, s, l, *hello, v, key, server_nonce, resumed, suite.bytes)) return;
  if (resumed)
    spdlog::info("CPE '{}' from {}: resumed session {:016x} (it had {}, we had {}; replaying {} packets)", s.peer_id,
                 l.remote, s.id(), hello->resume_rx_dsn, l.core().rx_last(), s.counters().replayed - replayed0);
  else
    spdlog::info("CPE '{}' from {}: new session {:016x} (protocol {}){}", s.peer_id, l.remote, s.id(), v,
                 hello->resume_session ? fmt::format(" (session {:016x} was not held)", hello->resume_session) : "");
}

bool Gateway::accept_link(const ConnPtr& hc, Session& s, Link& l, const hs::Hello& hello, std::uint8_t version,
                          hs::KeyView key, const hs::Nonce& server_nonce, bool resumed, SuiteBytes suite) {
  hs::HelloAck ack{s.id(), resumed ? l.core().rx_last() : 0, resumed,
                   static_cast<std::uint32_t>(cfg_.link.heartbeat.count()), gcfg_.id, suite.cipher,
                   suite.protection, {}};
  std::optional<seal::LinkCrypto> crypto;
  if (const auto st = to_suite(version, suite)) {
    try {
      crypto.emplace(seal::make_link_crypto(key, hello.nonce, server_nonce, seal::Role::gateway, *st));
    } catch (const std::exception& e) {
      refuse(hc, Fault::seal_failed, e.what(), version);
      return false;
    }
  }
  std::vector<std::uint8_t> body;
  hs::encode(ack, version, body);
  if (!key.empty()) hs::sign_hello_ack(body, version, key, hello.nonce, server_nonce);
  if (!hc->send_frame(wire::FrameType::hello_ack, version, body)) {
    refuse(hc, Fault::socket_error, "cannot send HELLO_ACK", version);
    return false;
  }
  unpend(hc);
  const auto early = hc->leftover();
  l.remote = hc->peer();
  l.attach(hc->take_socket(), early, resumed ? hello.resume_rx_dsn : 0, version, std::move(crypto));
  attached(l, fmt::format("CPE '{}'{}", s.peer_id, l.index() ? fmt::format(" link {}", l.index()) : ""));
  return true;
}

}  // namespace tunnel
