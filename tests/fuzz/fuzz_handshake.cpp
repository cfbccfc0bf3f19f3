// libFuzzer target for the handshake decoders (handshake.hpp): the first
// input byte picks CHALLENGE, HELLO or HELLO_ACK, the rest is the body. What
// a decoder accepts must encode back to the same bytes, and a refusal must
// say why.
#include <tunnel/handshake.hpp>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace hs = tunnel::hs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> body(data + 1, size - 1);
  std::string why;
  std::vector<std::uint8_t> again;
  switch (data[0] % 3) {
    case 0:
      if (auto c = hs::decode_challenge(body, why)) {
        hs::encode(*c, again);
        if (again.size() != hs::kNonceSize || std::memcmp(again.data(), body.data(), again.size()) != 0) std::abort();
        return 0;
      }
      break;
    case 1:
      if (auto h = hs::decode_hello(body, why)) {
        if (!hs::valid_id(h->id) || h->prefixes.size() > hs::kMaxPrefixes) std::abort();
        for (const auto& p : h->prefixes)
          if (p.length > (p.addr.is_v4() ? 32u : 128u)) std::abort();
        hs::encode(*h, again);
        if (again.size() != body.size() || std::memcmp(again.data(), body.data(), body.size()) != 0) std::abort();
        return 0;
      }
      break;
    default:
      if (auto a = hs::decode_hello_ack(body, why)) {
        if (a->session_id == 0) std::abort();
        hs::encode(*a, again);
        if (again.size() != body.size() || std::memcmp(again.data(), body.data(), body.size()) != 0) std::abort();
        return 0;
      }
      break;
  }
  if (why.empty()) std::abort();  // every refusal has a reason
  return 0;
}

// Well-formed bodies for the gcc replay (replay_main.cpp) to start from.
extern "C" void tunnel_fuzz_seed(std::mt19937_64& rng, std::vector<std::uint8_t>& out) {
  const unsigned kind = rng() % 3;
  out.push_back(static_cast<std::uint8_t>(kind));
  if (kind == 0) {
    hs::Challenge c;
    for (auto& b : c.nonce) b = static_cast<std::uint8_t>(rng());
    hs::encode(c, out);
  } else if (kind == 1) {
    hs::Hello h;
    h.capabilities = static_cast<std::uint32_t>(rng());
    h.resume_session = rng();
    h.resume_rx_dsn = rng();
    h.id = "cpe-" + std::to_string(rng() % 1000);
    for (unsigned i = 0; i < rng() % 4; ++i) {
      tunnel::Prefix p;
      if (rng() % 2) {
        p.addr = boost::asio::ip::address_v4(static_cast<std::uint32_t>(rng()));
        p.length = static_cast<unsigned>(rng() % 33);
      } else {
        boost::asio::ip::address_v6::bytes_type b;
        for (auto& x : b) x = static_cast<std::uint8_t>(rng());
        p.addr = boost::asio::ip::address_v6(b);
        p.length = static_cast<unsigned>(rng() % 129);
      }
      h.prefixes.push_back(p);
    }
    hs::encode(h, out);
  } else {
    hs::HelloAck a;
    a.session_id = rng() | 1;
    a.rx_dsn = rng();
    a.resumed = rng() % 2;
    a.heartbeat_ms = static_cast<std::uint32_t>(rng());
    hs::encode(a, out);
  }
}
