// A CPE written by hand, for the handshakes a real Client never sends: one
// plain TCP connection to the gateway, driven a step at a time on the loop
// the gateway runs on (each wait runs that loop).
#pragma once

#include "harness.hpp"

#include <tunnel/handshake.hpp>
#include <tunnel/wire.hpp>

#include <optional>
#include <string>

namespace inproc {

class RawCpe {
 public:
  // Connects at once (the gateway's loop accepts it on the next wait).
  RawCpe(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint gateway);

  struct Frame {
    tunnel::wire::FrameType type{};
    std::uint8_t version = 0;
    Bytes body;
  };
  // The next whole frame; nullopt when the connection ended first or nothing
  // came within `limit`.
  std::optional<Frame> next(std::chrono::milliseconds limit = 3000ms);
  // Reads the CHALLENGE (and keeps its nonce for hello()); nullopt when the
  // first frame is not a valid one.
  std::optional<tunnel::hs::Challenge> challenge();
  // A HELLO as a Client would fill it for `id` claiming `prefix` on link 0
  // of a new session, with the frame protection a keyed CPE offers.
  static tunnel::hs::Hello hello_for(std::string id, const char* prefix);
  // Sends `h` in a HELLO frame of `version`, signed with `key` over the
  // nonce of the CHALLENGE read.
  void hello(const tunnel::hs::Hello& h, std::uint8_t version, tunnel::hs::KeyView key);
  void send(const Bytes& raw);
  // Reads until the gateway closes the connection: the reason of the ERROR
  // frame it sent (nullopt: it closed without one). `version` gets the
  // ERROR's header version.
  std::optional<std::string> refusal(std::uint8_t* version = nullptr);

 private:
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::socket sock_;
  Bytes buf_;
  bool ended_ = false;
  tunnel::hs::Nonce server_nonce_{};
};

}  // namespace inproc
