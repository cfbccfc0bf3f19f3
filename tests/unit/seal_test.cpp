// Frame protection (seal.hpp): keys per link and direction, sealing in place,
// and every way a sealed frame can be wrong.
#include <tunnel/keys.hpp>
#include <tunnel/seal.hpp>
#include <tunnel/wire.hpp>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {
using namespace tunnel;
using seal::Status;
using Bytes = std::vector<std::uint8_t>;

const auto kPsk = keys::parse_key("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");

seal::Nonce nonce(std::uint8_t fill) {
  seal::Nonce n;
  n.fill(fill);
  return n;
}

// A plain frame of `type` with `body`, and kTagSize bytes of room after it.
Bytes frame(const Bytes& body, wire::FrameType type = wire::FrameType::heartbeat) {
  Bytes f(wire::kHeaderSize + body.size() + seal::kTagSize);
  wire::encode_header(f.data(), type, 0, static_cast<std::uint32_t>(body.size()));
  std::copy(body.begin(), body.end(), f.begin() + wire::kHeaderSize);
  return f;
}

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return b;
}

struct Param {
  seal::Cipher cipher;
  seal::Protection protection;
};

class Seal : public ::testing::TestWithParam<Param> {
 protected:
  seal::Suite suite{4, GetParam().cipher, GetParam().protection};
  seal::LinkCrypto cpe = seal::make_link_crypto(kPsk, nonce(1), nonce(2), seal::Role::cpe, suite);
  seal::LinkCrypto gw = seal::make_link_crypto(kPsk, nonce(1), nonce(2), seal::Role::gateway, suite);
  bool clear() const { return GetParam().protection == seal::Protection::integrity_only; }
};

TEST_P(Seal, RoundTripsBothWaysAndParsesAsAPlainFrame) {
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 1400u, 9000u}) {
    const Bytes body = pattern(n);
    Bytes f = frame(body, wire::FrameType::error);
    ASSERT_EQ(cpe.sealer.seal(f), Status::ok);
    EXPECT_EQ(seal::sealed_frame_size(f, 65536), f.size());
    if (n >= 16) {
      EXPECT_EQ(std::equal(body.begin(), body.end(), f.begin() + wire::kHeaderSize), clear()) << n;
    }
    ASSERT_EQ(gw.opener.open(f), Status::ok) << n;
    EXPECT_TRUE(std::equal(body.begin(), body.end(), f.begin() + wire::kHeaderSize));
    if (n > 256) continue;  // the largest ERROR body parse_frame takes
    const auto r = wire::parse_frame(std::span(f).first(wire::kHeaderSize + n), wire::Limits{});
    ASSERT_EQ(r.status, wire::ParseStatus::ok);
    EXPECT_EQ(r.frame.type, wire::FrameType::error);
    EXPECT_TRUE(std::equal(body.begin(), body.end(), r.frame.body.begin(), r.frame.body.end()));

  }
  for (std::size_t n : {0u, 1400u}) {
    Bytes back = frame(pattern(n));
    ASSERT_EQ(gw.sealer.seal(back), Status::ok);
    ASSERT_EQ(cpe.opener.open(back), Status::ok);
    EXPECT_TRUE(std::equal(back.begin() + wire::kHeaderSize, back.end() - seal::kTagSize, pattern(n).begin()));
  }
  EXPECT_EQ(cpe.sealer.frames(), 7u);
  EXPECT_EQ(gw.opener.frames(), 7u);
  EXPECT_EQ(gw.sealer.frames(), 2u);
}

TEST_P(Seal, EveryFlippedByteIsRejected) {
  const Bytes body = pattern(100);
  Bytes sealed = frame(body, wire::FrameType::data);
  ASSERT_EQ(cpe.sealer.seal(sealed), Status::ok);
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (std::uint8_t bit : {0x01, 0x80}) {
      Bytes f = sealed;
      f[i] ^= bit;
      // A fresh opener per try: the first frame under this key.
      auto o = seal::make_link_crypto(kPsk, nonce(1), nonce(2), seal::Role::gateway, suite);
      const Status s = o.opener.open(f);
      EXPECT_TRUE(s == Status::forged || s == Status::bad_length) << "byte " << i;
      if (s == Status::forged) {  // nothing unauthenticated is left behind
        for (std::size_t k = 0; k < body.size(); ++k) ASSERT_EQ(f[wire::kHeaderSize + k], 0) << i;
      }
    }
  }
  EXPECT_EQ(gw.opener.open(sealed), Status::ok);
}

TEST_P(Seal, WrongDirectionLinkOrKeyIsRejected) {
  Bytes f = frame(pattern(64));
  ASSERT_EQ(cpe.sealer.seal(f), Status::ok);
  auto open_with = [&](seal::LinkCrypto&& l) {
    Bytes c = f;
    return l.opener.open(c);
  };
  // The CPE's own opener is for the other direction.
  EXPECT_EQ(open_with(seal::make_link_crypto(kPsk, nonce(1), nonce(2), seal::Role::cpe, suite)), Status::forged);
  // Another link: other nonces, either side's.
  EXPECT_EQ(open_with(seal::make_link_crypto(kPsk, nonce(3), nonce(2), seal::Role::gateway, suite)), Status::forged);
  EXPECT_EQ(open_with(seal::make_link_crypto(kPsk, nonce(1), nonce(3), seal::Role::gateway, suite)), Status::forged);
  EXPECT_EQ(open_with(seal::make_link_crypto(kPsk, nonce(2), nonce(1), seal::Role::gateway, suite)), Status::forged);
  // Another key, another protocol version, the other protection mode.
  const auto other = keys::parse_key(std::string(64, '7'));
  EXPECT_EQ(open_with(seal::make_link_crypto(other, nonce(1), nonce(2), seal::Role::gateway, suite)), Status::forged);
  seal::Suite v5 = suite;
  v5.version = 5;
  EXPECT_EQ(open_with(seal::make_link_crypto(kPsk, nonce(1), nonce(2), seal::Role::gateway, v5)), Status::forged);
  seal::Suite mode = suite;
  mode.protection = clear() ? seal::Protection::encrypt : seal::Protection::integrity_only;
  EXPECT_EQ(open_with(seal::make_link_crypto(kPsk, nonce(1), nonce(2), seal::Role::gateway, mode)), Status::forged);
  EXPECT_EQ(open_with(std::move(gw)), Status::ok);
}

TEST_P(Seal, DroppedRepeatedOrReorderedFramesFailTheImplicitCounter) {
  Bytes a = frame(pattern(10)), b = frame(pattern(10)), c = frame(pattern(10));
  ASSERT_EQ(cpe.sealer.seal(a), Status::ok);
  ASSERT_EQ(cpe.sealer.seal(b), Status::ok);
  ASSERT_EQ(cpe.sealer.seal(c), Status::ok);
  Bytes a2 = a;
  EXPECT_EQ(gw.opener.open(b), Status::forged);  // a was dropped
  EXPECT_EQ(gw.opener.frames(), 0u);
  EXPECT_EQ(gw.opener.open(a), Status::ok);
  EXPECT_EQ(gw.opener.open(a2), Status::forged);  // a repeated
  Bytes c2 = c;
  EXPECT_EQ(gw.opener.open(c2), Status::forged);  // c before b
}

TEST_P(Seal, CounterExhaustionRefusesToSeal) {
  seal::DirectionKey k;
  seal::derive_key(kPsk, nonce(1), nonce(2), seal::Direction::cpe_to_gateway, suite, k);
  seal::Sealer s(k, suite, 3);
  seal::Opener o(k, suite, 3);
  for (int i = 0; i < 3; ++i) {
    Bytes f = frame(pattern(5));
    ASSERT_EQ(s.seal(f), Status::ok);
    ASSERT_EQ(o.open(f), Status::ok);
  }
  Bytes f = frame(pattern(5));
  const Bytes before = f;
  EXPECT_EQ(s.seal(f), Status::exhausted);
  EXPECT_EQ(f, before);  // untouched
  EXPECT_EQ(s.frames(), 3u);
  f[7] += seal::kTagSize;  // shaped like a sealed frame
  EXPECT_EQ(o.open(f), Status::exhausted);
}

TEST_P(Seal, MalformedLengthsAreRefused) {
  Bytes tiny(seal::kHeaderSize + seal::kTagSize - 1);
  EXPECT_EQ(cpe.sealer.seal(tiny), Status::bad_length);
  EXPECT_EQ(gw.opener.open(tiny), Status::bad_length);
  Bytes f = frame(pattern(20));
  f[7] ^= 1;  // header length disagrees with the buffer
  EXPECT_EQ(cpe.sealer.seal(f), Status::bad_length);
  EXPECT_EQ(cpe.sealer.frames(), 0u);
  Bytes hdr(8, 0);
  hdr[7] = 15;  // shorter than a tag
  EXPECT_FALSE(seal::sealed_frame_size(hdr, 100));
  hdr[7] = 116;
  EXPECT_EQ(seal::sealed_frame_size(hdr, 100), 124u);
  hdr[7] = 117;
  EXPECT_FALSE(seal::sealed_frame_size(hdr, 100));
}

INSTANTIATE_TEST_SUITE_P(
    Suites, Seal,
    ::testing::Values(Param{seal::Cipher::chacha20_poly1305, seal::Protection::encrypt},
                      Param{seal::Cipher::chacha20_poly1305, seal::Protection::integrity_only},
                      Param{seal::Cipher::aes_256_gcm, seal::Protection::encrypt},
                      Param{seal::Cipher::aes_256_gcm, seal::Protection::integrity_only}),
    [](const auto& info) {
      return std::string(info.param.cipher == seal::Cipher::aes_256_gcm ? "AesGcm" : "ChaCha") +
             (info.param.protection == seal::Protection::encrypt ? "Encrypt" : "IntegrityOnly");
    });

TEST(SealKeys, DirectionsAndLinksGetDistinctKeys) {
  seal::Suite s{4, seal::Cipher::chacha20_poly1305, seal::Protection::encrypt};
  seal::DirectionKey up, down, other_link, again;
  seal::derive_key(kPsk, nonce(1), nonce(2), seal::Direction::cpe_to_gateway, s, up);
  seal::derive_key(kPsk, nonce(1), nonce(2), seal::Direction::gateway_to_cpe, s, down);
  seal::derive_key(kPsk, nonce(1), nonce(9), seal::Direction::cpe_to_gateway, s, other_link);
  seal::derive_key(kPsk, nonce(1), nonce(2), seal::Direction::cpe_to_gateway, s, again);
  auto eq = [](const seal::DirectionKey& a, const seal::DirectionKey& b) {
    return std::equal(a.bytes().begin(), a.bytes().end(), b.bytes().begin());
  };
  EXPECT_FALSE(eq(up, down));
  EXPECT_FALSE(eq(up, other_link));
  EXPECT_TRUE(eq(up, again));
  EXPECT_THROW(seal::derive_key({}, nonce(1), nonce(2), seal::Direction::cpe_to_gateway, s, again),
               std::invalid_argument);
}

TEST(SealKeys, IntegrityOnlyLeavesTheBodyReadable) {
  seal::Suite s{4, seal::Cipher::chacha20_poly1305, seal::Protection::integrity_only};
  auto cpe = seal::make_link_crypto(kPsk, nonce(1), nonce(2), seal::Role::cpe, s);
  const Bytes body = pattern(300);
  Bytes f = frame(body, wire::FrameType::data);
  ASSERT_EQ(cpe.sealer.seal(f), Status::ok);
  EXPECT_TRUE(std::equal(body.begin(), body.end(), f.begin() + wire::kHeaderSize));  // what a capture sees
  EXPECT_EQ(f.size(), wire::kHeaderSize + body.size() + seal::kTagSize);
}

// Known answers from docs/protocol.md ("Frame protection"), computed by an
// implementation of that text alone (Python's cryptography package): HKDF
// inputs, counter nonce and associated data exactly as documented. PSK bytes
// 00..1f, client nonce 32 x 0x11, server nonce 32 x 0x22, version 4; each
// sealer's first frame is a HEARTBEAT, its second an ACK of DSN 7.
TEST(SealVectors, MatchTheProtocolDocument) {
  const auto psk = keys::parse_key("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  using C = seal::Cipher;
  using P = seal::Protection;
  using R = seal::Role;
  struct Vector {
    C cipher;
    P protection;
    R self;
    const char *heartbeat, *ack;
  };
  const Vector vectors[] = {
      {C::chacha20_poly1305, P::encrypt, R::cpe, "0405000000000010a74087479d1616f60231a83958ea682f",
       "040600000000001898894620ae64bcd212c8bebc3c2489f0b12d00ba31dc6a5f"},
      {C::chacha20_poly1305, P::encrypt, R::gateway, "040500000000001001557405b015fa09065dda97b072fa19",
       "04060000000000186e4c4a4852c07ea4f0e773f2a5d87f13330874352ae55fab"},
      {C::chacha20_poly1305, P::integrity_only, R::cpe, "04050000000000107bfcbd710f0e5f660a45db36ad3a15db",
       "04060000000000180000000000000007e324a02230169450296f1aa38423b55a"},
      {C::aes_256_gcm, P::encrypt, R::cpe, "0405000000000010017bd7364e720ea0ff1016b9c63fbcb0",
       "04060000000000180391abf38a63c57609b2800023ca03b32f49ee20cbd87beb"},
      {C::aes_256_gcm, P::encrypt, R::gateway, "0405000000000010b47e9ca82f97ca018fec15cb07bd84b3",
       "04060000000000186d7c78bffb953322c0001c16c5f03070056155197f6d24f1"},
      {C::aes_256_gcm, P::integrity_only, R::gateway, "0405000000000010203c6956864e436ea9dc09c99654e1bb",
       "040600000000001800000000000000075f61275f60b4805b7a71d1bb35f4dd8b"},
  };
  const auto hex = [](const Bytes& b) {
    std::string s;
    for (auto x : b) {
      s += "0123456789abcdef"[x >> 4];
      s += "0123456789abcdef"[x & 15];
    }
    return s;
  };
  for (const auto& v : vectors) {
    auto lc = seal::make_link_crypto(psk, nonce(0x11), nonce(0x22), v.self, {4, v.cipher, v.protection});
    Bytes hb = frame({});
    Bytes ack = frame({0, 0, 0, 0, 0, 0, 0, 7}, wire::FrameType::ack);
    ASSERT_EQ(lc.sealer.seal(hb), Status::ok);
    ASSERT_EQ(lc.sealer.seal(ack), Status::ok);
    const std::string what = std::string(seal::to_string(v.cipher)) + " " + std::string(seal::to_string(v.protection)) +
                             (v.self == R::cpe ? " cpe-to-gateway" : " gateway-to-cpe");
    EXPECT_EQ(hex(hb), v.heartbeat) << what;
    EXPECT_EQ(hex(ack), v.ack) << what;
  }
}

}  // namespace
