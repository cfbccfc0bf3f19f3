// Keys, key files, and prefix and group admission (keys.hpp).
#include <tunnel/handshake.hpp>
#include <tunnel/fault.hpp>
#include <tunnel/keys.hpp>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {
using namespace tunnel;
namespace fs = std::filesystem;

const std::string kHexA(64, 'a');
const std::string kHexB = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

std::vector<Prefix> pfx(std::initializer_list<const char*> l) {
  std::vector<Prefix> v;
  for (auto s : l) v.push_back(parse_prefix(s));
  return v;
}

// A private temporary directory, removed at the end of the test.
struct TempDir {
  fs::path dir = fs::temp_directory_path() / ("tunneld-keys-" + std::to_string(::getpid()) + "-" +
                                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() { fs::create_directories(dir); }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text, fs::perms mode = fs::perms::owner_read |
                                                                                        fs::perms::owner_write) {
    const auto p = dir / name;
    std::ofstream(p) << text;
    fs::permissions(p, mode);
    return p.string();
  }
};

TEST(Keys, HexKeysParseTextKeysAreRefusedWithAHint) {
  const auto k = keys::parse_key(kHexB);
  ASSERT_EQ(k.size(), 32u);
  EXPECT_EQ(k.data()[0], 0x00);
  EXPECT_EQ(k.data()[31], 0xff);
  EXPECT_EQ(keys::parse_key(std::string(128, 'F')).size(), 64u);
  EXPECT_EQ(keys::parse_key("  " + kHexA + " \r").size(), 32u);
  for (const std::string& bad : {std::string("a long enough passphrase of more than 32 characters"),
                                std::string(62, 'a'), std::string(65, 'a'), std::string(130, 'a'),
                                std::string(63, 'a') + "g", std::string()}) {
    try {
      keys::parse_key(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("openssl rand -hex 32"), std::string::npos) << e.what();
    }
  }
}

TEST(Keys, SecretKeyMovesAndClones) {
  auto a = keys::parse_key(kHexB);
  const auto* bytes = a.data();
  keys::SecretKey b = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.data(), bytes);
  auto c = b.clone();
  ASSERT_EQ(c.size(), b.size());
  EXPECT_NE(c.data(), b.data());
  EXPECT_TRUE(std::equal(c.begin(), c.end(), b.begin()));
  keys::KeyView v = c;  // what the MAC and KDF take
  EXPECT_EQ(v.size(), 32u);
  b = keys::parse_key(kHexA);  // the old bytes are wiped and freed
  EXPECT_EQ(b.data()[0], 0xaa);
  EXPECT_TRUE(keys::SecretKey().empty());
}

TEST(Keys, KeysAreInLockedMemoryWhenTheLimitAllows) {
  const auto k = keys::parse_key(kHexA);
  // OpenSSL's secure heap mlocks 512 KiB; the default RLIMIT_MEMLOCK (8 MiB) allows it.
  if (!k.locked()) GTEST_SKIP() << "mlock refused here (RLIMIT_MEMLOCK); keys work unlocked";
  EXPECT_TRUE(k.locked());
}

TEST(Keys, CpeFileSkipsCommentsAndBlankLines) {
  TempDir t;
  const auto p = t.write("psk", "# generated with openssl rand -hex 32\n\n   \n" + kHexB + "\n# trailing\n");
  const auto k = keys::load_key_file(p);
  EXPECT_EQ(k.size(), 32u);
  EXPECT_THROW(keys::load_key_file(t.write("two", kHexA + "\n" + kHexB + "\n")), std::runtime_error);
  EXPECT_THROW(keys::load_key_file(t.write("none", "# only a comment\n")), std::runtime_error);
  try {
    keys::load_key_file(t.write("text", "# c\nshort passphrase\n"));
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("openssl rand -hex 32"), std::string::npos) << e.what();
  }
}

TEST(Keys, UnsafeFilesAreRefused) {
  TempDir t;
  const auto p = t.write("psk", kHexA + "\n");
  EXPECT_NO_THROW(keys::load_key_file(p));
  fs::permissions(p, fs::perms::group_read, fs::perm_options::add);
  EXPECT_THROW(keys::load_key_file(p), std::runtime_error);
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_write);
  EXPECT_THROW(keys::load_key_file(p), std::runtime_error);
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  fs::create_symlink(p, t.dir / "link");
  try {
    keys::load_key_file((t.dir / "link").string());
    ADD_FAILURE() << "followed a symbolic link";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
  fs::create_directory(t.dir / "d");
  fs::permissions(t.dir / "d", fs::perms::owner_all);
  EXPECT_THROW(keys::load_key_file((t.dir / "d").string()), std::runtime_error);  // not a regular file
  EXPECT_THROW(keys::load_key_file((t.dir / "missing").string()), std::runtime_error);
  if (::geteuid() == 0) {
    // Root may read a file owned by anyone; the check refuses other owners.
    ASSERT_EQ(::chown(p.c_str(), 4242, 4242), 0);
    EXPECT_THROW(keys::load_key_file(p), std::runtime_error);
  }
}

TEST(Keys, GatewayTableBindsIdsToPrefixes) {
  TempDir t;
  const auto p = t.write("keys", "# id key prefixes\n"
                                 "cpe-1 " + kHexA + " 198.18.10.0/24,fd00:10::/64\n"
                                 "\n"
                                 "cpe-2\t" + kHexB + "   198.18.20.0/24 , 198.18.21.0/24\n"
                                 "cpe-3 " + kHexB + "\n" +
                                 kHexA + "\n");
  const auto tab = keys::load_key_table(p);
  EXPECT_EQ(tab.size(), 4u);
  ASSERT_NE(tab.find("cpe-1"), nullptr);
  EXPECT_EQ(tab.find("cpe-1")->data()[0], 0xaa);
  EXPECT_EQ(tab.find("cpe-2")->data()[0], 0x00);
  ASSERT_NE(tab.find("cpe-9"), nullptr);  // the any-id key
  EXPECT_EQ(tab.find("cpe-9"), &tab.any->key);
  EXPECT_EQ(tab.by_id.at("cpe-2").prefixes.size(), 2u);
  EXPECT_TRUE(tab.by_id.at("cpe-1").bound);
  EXPECT_FALSE(tab.by_id.at("cpe-3").bound);

  using A = keys::Admission;
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.10.0/24", "fd00:10::/64"}), false), A::allowed);
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.10.128/25", "fd00:10:0:0:8000::/65"}), false), A::allowed);
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.10.7/32"}), false), A::allowed);
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.0.0/16"}), false), A::prefix_not_allowed);   // wider
  EXPECT_EQ(tab.admit("cpe-1", pfx({"0.0.0.0/0"}), false), A::prefix_not_allowed);
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.20.0/24"}), false), A::prefix_not_allowed);  // cpe-2's
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.20.0/24"}), true), A::prefix_not_allowed);   // a list binds always
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.10.0/24", "198.18.11.0/24"}), false), A::prefix_not_allowed);
  EXPECT_EQ(tab.admit("cpe-1", pfx({"::ffff:198.18.10.1/128"}), false), A::prefix_not_allowed);
  EXPECT_EQ(tab.admit("cpe-2", pfx({"198.18.21.0/24"}), false), A::allowed);
  // No list, or the any-id key: only with --allow-unbound-prefixes.
  EXPECT_EQ(tab.admit("cpe-3", pfx({"198.18.30.0/24"}), false), A::prefix_not_allowed);
  EXPECT_EQ(tab.admit("cpe-3", pfx({"198.18.30.0/24"}), true), A::allowed);
  EXPECT_EQ(tab.admit("cpe-9", pfx({"198.18.30.0/24"}), false), A::prefix_not_allowed);
  EXPECT_EQ(tab.admit("cpe-9", pfx({"198.18.30.0/24"}), true), A::allowed);
  EXPECT_EQ(tab.admit("cpe-9", {}, false), A::allowed);  // claims nothing
  EXPECT_EQ(tunnel::wire_reason(tunnel::Fault::prefix_not_allowed), "prefix not allowed");
}

TEST(Keys, GatewayTableBindsIdsToGroups) {
  TempDir t;
  const auto p = t.write("keys", "cpe-1 " + kHexA + " 198.18.10.0/24 groups=lab,north\n"
                                 "cpe-2 " + kHexB + " groups= lab , south \n"
                                 "cpe-3 " + kHexB + " groups=\n"
                                 "cpe-4 " + kHexB + " 198.18.40.0/24\n"
                                 "cpe-5\t" + kHexB + "\tgroups=lab\n" +
                                 kHexA + "\n");
  const auto tab = keys::load_key_table(p);
  const auto& b1 = tab.by_id.at("cpe-1");
  EXPECT_TRUE(b1.bound);
  ASSERT_EQ(b1.prefixes.size(), 1u);
  EXPECT_TRUE(b1.groups_bound);
  EXPECT_EQ(b1.groups, (std::vector<std::string>{"lab", "north"}));
  EXPECT_FALSE(tab.by_id.at("cpe-2").bound);  // groups without prefixes
  EXPECT_EQ(tab.by_id.at("cpe-2").groups, (std::vector<std::string>{"lab", "south"}));
  EXPECT_TRUE(tab.by_id.at("cpe-3").groups_bound);  // groups= alone: none
  EXPECT_TRUE(tab.by_id.at("cpe-3").groups.empty());
  EXPECT_FALSE(tab.by_id.at("cpe-4").groups_bound);
  EXPECT_EQ(tab.by_id.at("cpe-5").groups, (std::vector<std::string>{"lab"}));

  using A = keys::Admission;
  using G = std::vector<std::string>;
  EXPECT_EQ(tab.admit_groups("cpe-1", G{"lab"}), A::allowed);
  EXPECT_EQ(tab.admit_groups("cpe-1", G{"north", "lab"}), A::allowed);
  EXPECT_EQ(tab.admit_groups("cpe-1", G{"lab", "south"}), A::group_not_allowed);
  EXPECT_EQ(tab.admit_groups("cpe-1", G{"Lab"}), A::group_not_allowed);  // names are exact
  EXPECT_EQ(tab.admit_groups("cpe-3", G{"lab"}), A::group_not_allowed);
  EXPECT_EQ(tab.admit_groups("cpe-3", G{}), A::allowed);      // announcing none is always allowed
  EXPECT_EQ(tab.admit_groups("cpe-4", G{"any", "thing"}), A::allowed);  // no groups=: not restricted
  EXPECT_EQ(tab.admit_groups("cpe-9", G{"lab"}), A::allowed);  // the any-id key binds no groups
  // The prefix binding is unchanged by a groups= field.
  EXPECT_EQ(tab.admit("cpe-1", pfx({"198.18.10.0/25"}), false), A::allowed);
  EXPECT_EQ(tab.admit("cpe-2", pfx({"198.18.10.0/25"}), false), A::prefix_not_allowed);
  EXPECT_EQ(tunnel::wire_reason(tunnel::Fault::group_not_allowed), "group not allowed");
}

TEST(Keys, BadGroupFieldsNameTheLine) {
  TempDir t;
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"cpe-1 " + kHexA + " groups=lab,\n", "ends with a comma"},
      {"cpe-1 " + kHexA + " groups=lab,,north\n", "empty group name"},
      {"cpe-1 " + kHexA + " groups=-lab\n", "bad group name '-lab'"},
      {"cpe-1 " + kHexA + " groups=" + std::string(65, 'g') + "\n", "bad group name"},
      {"cpe-1 " + kHexA + " groups=lab groups=north\n", "groups= appears twice"},
      {"cpe-1 " + kHexA + " groups=lab 198.18.10.0/24\n", "groups= ends the line"},
      {"cpe-1 " + kHexA + " 198.18.10.0/24 group=lab\n", "unknown field 'group=lab'"},
      {kHexA + " groups=lab\n", "the any-id key binds no groups"},
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const auto p = t.write("k" + std::to_string(i), "# a comment\n" + bad[i].first);
    try {
      keys::load_key_table(p);
      ADD_FAILURE() << "accepted " << bad[i].first;
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("line 2: "), std::string::npos) << what;
      EXPECT_NE(what.find(bad[i].second), std::string::npos) << what;
    }
  }
}

TEST(Keys, UnknownIdsVerifyAgainstADecoyAndFailLikeAWrongProof) {
  TempDir t;
  const auto tab = keys::load_key_table(t.write("keys", "cpe-1 " + kHexA + "\n"));
  EXPECT_EQ(tab.find("nobody"), nullptr);
  const auto& decoy = tab.key_or_decoy("nobody");
  EXPECT_EQ(decoy.size(), 32u);
  EXPECT_EQ(&tab.key_or_decoy("cpe-1"), tab.find("cpe-1"));

  hs::Hello h;
  h.id = "nobody";
  h.nonce = hs::random_nonce();
  std::vector<std::uint8_t> body;
  hs::encode(h, 4, body);
  const auto sn = hs::random_nonce();
  hs::sign_hello(body, 4, tab.key_or_decoy("cpe-1"), sn);  // a real key, the wrong id
  EXPECT_FALSE(hs::verify_hello(body, 4, tab.key_or_decoy("nobody"), sn));
  EXPECT_EQ(tunnel::wire_reason(tunnel::Fault::auth_failed), "authentication failed");
}

TEST(Keys, GatewayTableRejectsBadLines) {
  TempDir t;
  const std::vector<std::string> bad = {
      "cpe-1 " + kHexA + "\ncpe-1 " + kHexB + "\n",         // repeated id
      kHexA + "\n" + kHexB + "\n",                            // two any-id keys
      "cpe-1 passphrase-of-some-length-that-is-long\n",       // text key
      "cpe-1 " + kHexA + " 198.18.10.0/33\n",                 // bad prefix
      "cpe-1 " + kHexA + " 198.18.10.0/24,\n",                // trailing comma
      "cpe-1 " + kHexA + " 198.18.10.0/24,,198.18.11.0/24\n", // empty item
      "# nothing\n\n",                                        // no key
  };
  for (std::size_t i = 0; i < bad.size(); ++i)
    EXPECT_THROW(keys::load_key_table(t.write("k" + std::to_string(i), bad[i])), std::runtime_error) << bad[i];
}

TEST(Keys, ReloadGivesAWholeTableOrAnError) {
  TempDir t;
  const auto p = t.write("keys", "cpe-1 " + kHexA + " 198.18.10.0/24\n");
  auto r = keys::reload_key_table(p);
  ASSERT_TRUE(r.table) << r.error;
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(r.table->size(), 1u);
  // A file broken half-way: no table at all, and the reason with the line.
  t.write("keys", "cpe-1 " + kHexA + " 198.18.10.0/24\ncpe-2 nonsense\n");
  auto bad = keys::reload_key_table(p);
  EXPECT_FALSE(bad.table);
  EXPECT_NE(bad.error.find("line 2"), std::string::npos) << bad.error;
  fs::permissions(p, fs::perms::others_read, fs::perm_options::add);
  EXPECT_FALSE(keys::reload_key_table(p).table);
}

}  // namespace
