// The daemon's status socket: a local stream socket that answers one request
// line and closes: "json" or "text" with a snapshot, "send ..." and
// "result ..." (admin.hpp) through the admin handler.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <cstdint>
#include <string>
#include <vector>

namespace tunneld {

class StatusServer {
 public:
  using Render = std::function<std::string(bool json)>;
  // An admin request: its line, its body, and the reply to send (once).
  using Admin = std::function<void(std::string line, std::vector<std::uint8_t> body,
                                   std::function<void(std::string)> reply)>;
  // Creates the socket's directory if needed and replaces a stale socket file.
  // Throws std::system_error when it cannot listen.
  StatusServer(boost::asio::io_context& io, std::string path, Render render, Admin admin = {});
  ~StatusServer();

 private:
  void accept();
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // an accept error (EMFILE) waits on it: no spin
  std::string path_;
  Render render_;
  Admin admin_;
};

}  // namespace tunneld
