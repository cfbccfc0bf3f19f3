// Parsing of the address forms the command line takes. Throws
// std::invalid_argument with a message fit for the user on bad input.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace tunnel {

struct Prefix {
  boost::asio::ip::address addr;
  unsigned length = 0;
  std::string to_string() const;
};

// "198.18.0.1:7000", "[fd00::1]:7000". The port must be 1..65535.
boost::asio::ip::tcp::endpoint parse_host_port(std::string_view s);

// "198.18.100.1/24", "fd00:100::1/64". The length defaults to the full width.
Prefix parse_prefix(std::string_view s);

// The form parse_host_port() reads: "198.18.0.1:7000", "[fd00::1]:7000".
std::string to_string(const boost::asio::ip::tcp::endpoint& e);

}  // namespace tunnel
