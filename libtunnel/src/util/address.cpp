#include <tunnel/address.hpp>

#include <charconv>
#include <stdexcept>

namespace tunnel {
namespace ip = boost::asio::ip;

std::string Prefix::to_string() const { return addr.to_string() + "/" + std::to_string(length); }

namespace {
unsigned parse_uint(std::string_view s, unsigned max, std::string_view what, std::string_view whole) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v > max) {
    throw std::invalid_argument("invalid " + std::string(what) + " in '" + std::string(whole) + "'");
  }
  return v;
}
ip::address parse_ip(std::string_view s, std::string_view whole) {
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(s), ec);
  if (ec) throw std::invalid_argument("invalid IP address in '" + std::string(whole) + "'");
  return a;
}
}  // namespace

ip::tcp::endpoint parse_host_port(std::string_view s) {
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      throw std::invalid_argument("expected [IPv6]:PORT, got '" + std::string(s) + "'");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || s.find(':') != colon)
      throw std::invalid_argument("expected ADDR:PORT (IPv6 as [ADDR]:PORT), got '" + std::string(s) + "'");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  const unsigned p = parse_uint(port, 65535, "port", s);
  if (p == 0) throw std::invalid_argument("port 0 in '" + std::string(s) + "'");
  return {parse_ip(host, s), static_cast<unsigned short>(p)};
}

Prefix parse_prefix(std::string_view s) {
  const auto slash = s.find('/');
  Prefix p;
  p.addr = parse_ip(s.substr(0, slash), s);
  const unsigned width = p.addr.is_v4() ? 32 : 128;
  p.length = slash == std::string_view::npos ? width : parse_uint(s.substr(slash + 1), width, "prefix length", s);
  return p;
}

std::string to_string(const boost::asio::ip::tcp::endpoint& e) {
  const std::string a = e.address().to_string();
  return (e.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(e.port());
}

}  // namespace tunnel
