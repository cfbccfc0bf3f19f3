// libFuzzer target for the handshake decoders (handshake.hpp): the first
// input byte picks CHALLENGE, HELLO or HELLO_ACK, the rest is the body. What
// a decoder accepts must encode back to the same bytes, and a refusal must
// say why.
#include <tunnel/handshake_codec.hpp>

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
  const std::uint8_t version = (data[0] & 4) ? 4 : 3;
  switch (data[0] % 3) {
    case 0:
      if (auto c = hs::decode_challenge(body, why)) {
        hs::encode(*c, again);  // the nonce and the offered versions; later fields are ignored
        if (again.size() > body.size() || std::memcmp(again.data(), body.data(), again.size()) != 0) std::abort();
        if (c->max_version && (c->min_version == 0 || c->min_version > c->max_version)) std::abort();
        return 0;
      }
      break;
    case 1:
      if (auto h = hs::decode_hello(body, version, why)) {
        if (!hs::valid_id(h->id) || h->prefixes.size() > hs::kMaxPrefixes) std::abort();
        for (const auto& p : h->prefixes)
          if (p.length > (p.addr.is_v4() ? 32u : 128u)) std::abort();
        if (h->link >= hs::kMaxLinks) std::abort();
        hs::encode(*h, version, again);
        if (again.size() != body.size() || std::memcmp(again.data(), body.data(), body.size()) != 0) std::abort();
        return 0;
      }
      break;
    default:
      if (auto a = hs::decode_hello_ack(body, version, why)) {
        if (a->session_id == 0) std::abort();
        hs::encode(*a, version, again);
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
  const std::uint8_t version = rng() % 2 ? 4 : 3;
  out.push_back(static_cast<std::uint8_t>(kind | (version == 4 ? 4 : 0)));
  if (kind == 0) {
    hs::Challenge c;
    for (auto& b : c.nonce) b = static_cast<std::uint8_t>(rng());
    if (rng() % 2) c.min_version = 3, c.max_version = 4;
    hs::encode(c, out);
  } else if (kind == 1) {
    hs::Hello h;
    h.capabilities = static_cast<std::uint32_t>(rng());
    h.resume_session = rng();
    h.resume_rx_dsn = rng();
    if (version >= 4) h.link = static_cast<std::uint8_t>(rng() % hs::kMaxLinks);
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
    hs::encode(h, version, out);
  } else {
    hs::HelloAck a;
    a.session_id = rng() | 1;
    a.rx_dsn = rng();
    a.resumed = rng() % 2;
    a.heartbeat_ms = static_cast<std::uint32_t>(rng());
    if (version >= 4) a.gateway_id = "gw-" + std::to_string(rng() % 100);
    hs::encode(a, version, out);
  }
}
