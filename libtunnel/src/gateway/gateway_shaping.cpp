// The gateway's downlink shaping (GatewayConfig::shape_downlink): the
// tunneld.downlink built-in stores a session's path rates by realtime link;
// each such link, when it joins or when the rates arrive, has its peer's
// address shaped (shaper.hpp) and its socket put on the realtime leaf.
#include <tunnel/gateway.hpp>
#include <tunnel/mptcp_socket.hpp>
#include <tunnel/path_rate.hpp>

#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace tunnel {

std::optional<control::BuiltinReply> Gateway::on_builtin(Session& s, std::string_view topic,
                                                         std::span<const std::uint8_t> body) {
  if (topic != kDownlinkTopic) return std::nullopt;
  if (!shaper_) return control::BuiltinReply{control::Status::no_handler, "downlink shaping is off on this gateway"};
  std::vector<LinkRate> rates;
  if (!parse_downlink_rates({reinterpret_cast<const char*>(body.data()), body.size()}, rates))
    return control::BuiltinReply{control::Status::failed, "not LINK RATE lines"};
  Shaped& sh = shaped_[s.id()];
  for (const auto& r : rates) {
    if (r.link >= sh.rate.size()) sh.rate.resize(r.link + 1, 0);
    sh.rate[r.link] = r.bps / 1000 * shaper::kShapePermille;
  }
  for (const auto& r : rates)
    if (Link* l = s.find_link(r.link); l && l->connected()) shape_link(s, *l);
  return control::BuiltinReply{control::Status::done, {}};
}

void Gateway::shape_link(Session& s, Link& l) {
  auto it = shaper_ ? shaped_.find(s.id()) : shaped_.end();
  if (it == shaped_.end() || l.index() == 0 || l.index() >= it->second.rate.size() || !it->second.rate[l.index()])
    return;
  Shaped& sh = it->second;
  sh.at.resize(sh.rate.size());
  sh.prio.resize(sh.rate.size(), 0);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(l.fd(), reinterpret_cast<sockaddr*>(&ss), &len) < 0) return;
  boost::asio::ip::address addr;
  if (ss.ss_family == AF_INET) {
    addr = boost::asio::ip::address_v4(ntohl(reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr));
  } else if (ss.ss_family == AF_INET6) {
    boost::asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, b.size());
    addr = unmapped(boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v6(b), 0)).address();
  } else {
    return;
  }
  auto& at = sh.at[l.index()];
  auto& prio = sh.prio[l.index()];
  if (!at || *at != addr) {  // a new path address: its own class (a rejoin from the same one keeps it)
    if (at) shaper_->release(*at);
    at.reset();
    std::string error;
    prio = shaper_->add(addr, sh.rate[l.index()], error);
    if (!prio) {
      spdlog::warn("CPE '{}': link {}: cannot shape the downlink to {}: {}", s.peer_id, l.index(), addr.to_string(),
                   error);
      return;
    }
    at = addr;
    spdlog::info("CPE '{}': downlink to {} shaped to {} kbit/s, realtime link {} first", s.peer_id, addr.to_string(),
                 sh.rate[l.index()] / 1000, l.index());
  }
  // Each connection of the link (a rejoin is a new socket) takes the realtime leaf.
  const int p = static_cast<int>(prio);
  if (::setsockopt(l.fd(), SOL_SOCKET, SO_PRIORITY, &p, sizeof p) < 0)
    spdlog::warn("CPE '{}': link {}: SO_PRIORITY: {}", s.peer_id, l.index(), std::strerror(errno));
}

void Gateway::unshape(std::uint64_t sid) {
  auto it = shaped_.find(sid);
  if (it == shaped_.end()) return;
  for (const auto& a : it->second.at)
    if (a && shaper_) shaper_->release(*a);
  shaped_.erase(it);
}

}  // namespace tunnel
