// `tunneld status`: the traffic classifier's flows.
#include "report.hpp"

#include <fmt/format.h>

#include <boost/asio/ip/address.hpp>

namespace tunneld {
namespace cls = tunnel::classify;

namespace {
std::string addr(const cls::FlowKey& k, const std::array<std::uint8_t, 16>& a) {
  if (k.family == 4) return boost::asio::ip::address_v4({a[0], a[1], a[2], a[3]}).to_string();
  boost::asio::ip::address_v6::bytes_type b;
  std::copy(a.begin(), a.end(), b.begin());
  return boost::asio::ip::address_v6(b).to_string();
}
}  // namespace

std::vector<FlowReport> FlowReport::of(const cls::Classifier& c, std::size_t max) {
  std::vector<cls::FlowInfo> infos(max);
  infos.resize(c.snapshot(infos, std::chrono::steady_clock::now()));
  std::vector<FlowReport> v;
  for (const auto& f : infos)
    v.push_back({addr(f.key, f.key.src), addr(f.key, f.key.dst), f.key.sport, f.key.dport, f.key.proto,
                 std::string(cls::to_string(f.cls)), std::string(cls::to_string(f.why)), f.rate_bps, f.mean_bytes,
                 f.packets});
  return v;
}

std::string FlowReport::json(const std::vector<FlowReport>& flows) {
  std::string s = "[";
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const auto& f = flows[i];
    s += fmt::format(
        R"({}{{"src":"{}","dst":"{}","sport":{},"dport":{},"proto":{},"class":"{}","why":"{}","rate_bps":{},)"
        R"("mean_bytes":{},"packets":{}}})",
        i ? "," : "", f.src, f.dst, f.sport, f.dport, f.proto, f.cls, f.why, f.rate_bps, f.mean_bytes, f.packets);
  }
  return s + "]";
}

std::string FlowReport::text(const std::vector<FlowReport>& flows) {
  std::string s;
  for (const auto& f : flows)
    s += fmt::format("flow {}:{} -> {}:{} proto {}  {} ({})  {} bit/s, mean {} bytes, {} packets\n", f.src, f.sport,
                     f.dst, f.dport, f.proto, f.cls, f.why, f.rate_bps, f.mean_bytes, f.packets);
  return s;
}

}  // namespace tunneld
