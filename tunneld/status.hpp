// The daemon's status socket: a local stream socket that answers one request
// line ("json" or "text") with a snapshot and closes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <functional>
#include <string>

namespace tunneld {

class StatusServer {
 public:
  using Render = std::function<std::string(bool json)>;
  // Creates the socket's directory if needed and replaces a stale socket file.
  // Throws std::system_error when it cannot listen.
  StatusServer(boost::asio::io_context& io, std::string path, Render render);
  ~StatusServer();

 private:
  void accept();
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  Render render_;
};

}  // namespace tunneld
