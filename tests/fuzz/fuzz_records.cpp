// libFuzzer target for header compression: the input becomes a list of IP
// packets (IPv4 and IPv6 UDP from a few flows, with fields the input
// chooses, and now and then raw bytes as they come); DataWriter puts them in
// one DATA frame, parse_frame() must accept it, and DataReader must give back
// every packet byte for byte.
#include <tunnel/data_frame.hpp>
#include <tunnel/ip_packet.hpp>
#include <tunnel/wire.hpp>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

void put16(std::uint8_t* p, unsigned v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// One packet chosen by the input; empty when the input ran out.
std::vector<std::uint8_t> make_packet(Input& in) {
  const std::uint8_t how = in.byte();
  const std::size_t payload = in.byte() * 5u + (how & 3);
  std::vector<std::uint8_t> p;
  if ((how & 0x30) == 0x30) {  // IPv6 UDP, one of two flows
    p.assign(48 + payload, 0);
    p[0] = 0x60;
    p[3] = how & 0x40 ? 1 : 0;
    put16(&p[4], static_cast<unsigned>(8 + payload));
    p[6] = how & 0x80 ? 17 : 58;
    p[7] = 64;
    p[8] = 0xfd;
    p[39] = 1;
    put16(&p[44], static_cast<unsigned>(8 + payload));
    p[46] = in.byte();
    p[47] = in.byte();
  } else {  // IPv4, UDP mostly, a few header variants
    p.assign(28 + payload, 0);
    p[0] = 0x45;
    p[1] = how & 0x40 ? 0xb8 : 0;
    put16(&p[2], static_cast<unsigned>(p.size()));
    p[4] = in.byte();
    p[5] = in.byte();
    p[6] = how & 0x80 ? 0x40 : (how & 0x08 ? 0x20 : 0);
    p[8] = 64 - (how >> 5 & 1);
    p[9] = how & 0x04 ? 17 : 1;
    p[12] = 198, p[13] = 18, p[15] = 2;
    p[16] = 198, p[17] = 18, p[19] = (how & 0x10) ? 3 : 4;
    put16(&p[24], static_cast<unsigned>(8 + payload - (in.byte() == 0xff)));
    p[26] = in.byte();
    p[27] = in.byte();
    std::uint32_t s = 0;
    for (int i = 0; i < 20; i += 2) s += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    put16(&p[10], ~s & 0xffff);
    if (in.byte() == 0x5a) p[11] ^= 1;  // a bad checksum now and then
  }
  for (std::size_t i = p.size() - payload; i < p.size(); ++i) p[i] = in.byte();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace w = tunnel::wire;
  Input in{data, size};
  std::vector<std::vector<std::uint8_t>> pkts;
  std::size_t total = 0;
  while (in.n > 0 && pkts.size() < 600) {
    auto p = make_packet(in);
    if (!tunnel::ip::well_formed(p)) std::abort();  // the generator's own contract
    if (total + p.size() > w::kMaxPacket) break;
    total += p.size();
    pkts.push_back(std::move(p));
  }
  if (pkts.empty()) return 0;
  w::DataWriter writer;
  std::vector<std::uint8_t> frame(w::kDataHeaderSize + total);
  std::size_t len = writer.begin(frame.data(), 1, pkts[0]);
  for (std::size_t i = 1; i < pkts.size(); ++i) len += writer.append(frame.data(), len, pkts[i]);
  const auto r = w::parse_frame({frame.data(), len}, {});
  if (r.status != w::ParseStatus::ok || r.consumed != len || r.frame.packets != pkts.size()) std::abort();
  static w::DataReader reader;
  reader.start(r.frame.body);
  for (const auto& want : pkts) {
    const auto got = reader.next();
    if (got.size() != want.size() || std::memcmp(got.data(), want.data(), want.size()) != 0) std::abort();
  }
  if (!reader.next().empty()) std::abort();
  return 0;
}
