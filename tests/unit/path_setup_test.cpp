// PathSetup's endpoint bookkeeping against an in-memory path manager that
// behaves like the kernel's table: ids from 1, EEXIST for a known address
// (an implicit endpoint is replaced), EINVAL for an unknown id.
#include <tunnel/mptcp_uapi.hpp>
#include <tunnel/path_setup.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace nl = tunnel::netlink;
namespace ip = boost::asio::ip;
using tunnel::EndpointResult;
using tunnel::PathDecision;
using tunnel::PathSetup;
namespace uapi = tunnel::uapi;

namespace {

class FakePm final : public nl::PmBackend {
 public:
  nl::PmLimits limits{2, 0};
  std::vector<nl::Endpoint> table;
  std::vector<std::uint8_t> deleted;  // every id passed to del_endpoint
  int fail_add = 0;                   // errno for the next add_endpoint calls, 0: succeed

  nl::PmLimits get_limits() override { return limits; }
  void set_limits(const nl::PmLimits& l) override { limits = l; }
  std::vector<nl::Endpoint> endpoints() override { return table; }
  std::uint8_t add_endpoint(const nl::Endpoint& ep) override {
    if (fail_add) throw std::system_error(fail_add, std::generic_category(), "add");
    auto same = std::find_if(table.begin(), table.end(), [&](const nl::Endpoint& e) { return e.addr == ep.addr; });
    if (same != table.end()) {
      if (!(same->flags & uapi::kPmAddrFlagImplicit)) throw std::system_error(EEXIST, std::generic_category(), "add");
      table.erase(same);
    }
    nl::Endpoint e = ep;
    e.id = lowest_free_id();
    table.push_back(e);
    return e.id;
  }
  void del_endpoint(std::uint8_t id) override {
    deleted.push_back(id);
    auto it = std::find_if(table.begin(), table.end(), [&](const nl::Endpoint& e) { return e.id == id; });
    if (it == table.end()) throw std::system_error(EINVAL, std::generic_category(), "del");
    table.erase(it);
  }
  // What another program does: ip mptcp endpoint add ADDR
  std::uint8_t someone_adds(const char* a) {
    nl::Endpoint e;
    e.addr = ip::make_address(a);
    e.flags = uapi::kPmAddrFlagSignal;
    return add_endpoint(e);
  }
  bool has(const char* a) const {
    return std::any_of(table.begin(), table.end(), [&](const nl::Endpoint& e) { return e.addr == ip::make_address(a); });
  }

 private:
  std::uint8_t lowest_free_id() const {
    for (std::uint8_t id = 1;; ++id) {
      if (std::none_of(table.begin(), table.end(), [&](const nl::Endpoint& e) { return e.id == id; })) return id;
    }
  }
};

ip::address A(const char* s) { return ip::make_address(s); }

}  // namespace

TEST(PathSetup, RaisesLimitsAddsRemovesAndRestores) {
  FakePm pm;
  {
    PathSetup ps(pm, 4, 8);
    EXPECT_EQ(pm.limits, (nl::PmLimits{4, 8}));
    EXPECT_EQ(ps.add("dsl0", A("192.0.2.1"), 3, 0), EndpointResult::added);
    EXPECT_EQ(ps.add("lte0", A("2001:db8::1"), 4, uapi::kPmAddrFlagFullmesh), EndpointResult::added);
    EXPECT_EQ(ps.add("dsl0", A("192.0.2.1"), 3, 0), EndpointResult::unchanged);
    ASSERT_EQ(pm.table.size(), 2u);
    EXPECT_EQ(pm.table[0].flags, uapi::kPmAddrFlagSubflow);
    EXPECT_EQ(pm.table[0].ifindex, 3);
    EXPECT_EQ(pm.table[1].flags, uapi::kPmAddrFlagSubflow | uapi::kPmAddrFlagFullmesh);
    EXPECT_EQ(ps.remove("dsl0", A("192.0.2.1")), EndpointResult::removed);
    EXPECT_EQ(ps.remove("dsl0", A("192.0.2.1")), EndpointResult::unchanged);
    EXPECT_FALSE(pm.has("192.0.2.1"));
    EXPECT_EQ(ps.added().size(), 1u);
    EXPECT_EQ(ps.path_name(0), "lte0");
  }
  EXPECT_TRUE(pm.table.empty());
  EXPECT_EQ(pm.limits, (nl::PmLimits{2, 0}));
}

TEST(PathSetup, ForeignEndpointsAreUsedNeverRemoved) {
  FakePm pm;
  pm.someone_adds("192.0.2.1");
  {
    PathSetup ps(pm, 0, 0);
    EXPECT_EQ(ps.add("dsl0", A("192.0.2.1"), 3, 0), EndpointResult::foreign);
    EXPECT_TRUE(ps.added().empty());
    EXPECT_EQ(ps.remove("dsl0", A("192.0.2.1")), EndpointResult::unchanged);
  }
  EXPECT_TRUE(pm.has("192.0.2.1"));
  EXPECT_TRUE(pm.deleted.empty());
}

TEST(PathSetup, ReplacesAnImplicitEndpoint) {
  FakePm pm;
  nl::Endpoint implicit;
  implicit.addr = A("2001:db8::1");
  implicit.flags = uapi::kPmAddrFlagImplicit;
  pm.add_endpoint(implicit);
  PathSetup ps(pm, 0, 0);
  EXPECT_EQ(ps.add("lte0", A("2001:db8::1"), 4, 0), EndpointResult::added);
  ASSERT_EQ(pm.table.size(), 1u);
  EXPECT_EQ(pm.table[0].flags, uapi::kPmAddrFlagSubflow);
}

// Someone deleted our endpoint and the kernel gave its id to theirs: we
// forget ours and leave theirs alone.
TEST(PathSetup, NeverDeletesAnIdGivenToSomeoneElse) {
  FakePm pm;
  {
    PathSetup ps(pm, 0, 0);
    ps.add("dsl0", A("192.0.2.1"), 3, 0);
    const std::uint8_t ours = ps.added()[0].id;
    pm.del_endpoint(ours);
    pm.deleted.clear();
    EXPECT_EQ(pm.someone_adds("198.51.100.5"), ours);
    EXPECT_EQ(ps.remove("dsl0", A("192.0.2.1")), EndpointResult::lost);
    ps.add("lte0", A("2001:db8::1"), 4, 0);
    pm.table[1].addr = A("2001:db8::99");  // ours, replaced behind our back
  }
  EXPECT_TRUE(pm.deleted.empty());
  EXPECT_TRUE(pm.has("198.51.100.5"));
}

TEST(PathSetup, FailedReAddForgetsTheOldId) {
  FakePm pm;
  {
    PathSetup ps(pm, 0, 0);
    ps.add("dsl0", A("192.0.2.1"), 3, 0);
    pm.fail_add = ENOMEM;
    EXPECT_EQ(ps.rebuild("dsl0", A("192.0.2.1")), EndpointResult::failed);
    EXPECT_EQ(ps.last_errno(), ENOMEM);
    EXPECT_EQ(ps.added()[0].id, 0);
    EXPECT_THROW(ps.rebuild(0), std::runtime_error);
    pm.fail_add = 0;
    const std::uint8_t theirs = pm.someone_adds("198.51.100.5");
    EXPECT_EQ(theirs, 1);  // the id we had
    pm.deleted.clear();
    EXPECT_EQ(ps.retry(), 1u);
    EXPECT_NE(ps.added()[0].id, 0);
    EXPECT_NE(ps.added()[0].id, theirs);
  }
  EXPECT_EQ(pm.deleted.size(), 1u);  // ours only
  EXPECT_TRUE(pm.has("198.51.100.5"));
  EXPECT_FALSE(pm.has("192.0.2.1"));
}

TEST(PathSetup, RebuildGivesAFreshEndpoint) {
  FakePm pm;
  PathSetup ps(pm, 0, 0);
  ps.add("dsl0", A("192.0.2.1"), 3, uapi::kPmAddrFlagBackup);
  EXPECT_EQ(ps.rebuild("dsl0", A("192.0.2.1")), EndpointResult::added);
  ASSERT_EQ(pm.table.size(), 1u);
  EXPECT_EQ(pm.deleted.size(), 1u);
  EXPECT_EQ(pm.table[0].flags, uapi::kPmAddrFlagSubflow | uapi::kPmAddrFlagBackup);
  ps.rebuild(0);
  EXPECT_EQ(pm.deleted.size(), 2u);
}

TEST(PathSetup, AppliesTrackerDecisions) {
  FakePm pm;
  PathSetup ps(pm, 0, 0);
  const tunnel::PathSpec dsl{"dsl0", 0};
  using K = PathDecision::Kind;
  EXPECT_EQ(ps.apply({K::add_endpoint, 0, A("192.0.2.1"), 3}, dsl), EndpointResult::added);
  EXPECT_EQ(ps.apply({K::path_up, 0, {}, 3}, dsl), EndpointResult::unchanged);
  EXPECT_EQ(ps.apply({K::remove_endpoint, 0, A("192.0.2.1"), 3}, dsl), EndpointResult::removed);
  EXPECT_EQ(ps.apply({K::add_endpoint, 0, A("203.0.113.7"), 3}, dsl), EndpointResult::added);
  ASSERT_EQ(pm.table.size(), 1u);
  EXPECT_EQ(pm.table[0].addr, A("203.0.113.7"));
  // Same address, new device (the interface came back with another index).
  EXPECT_EQ(ps.apply({K::add_endpoint, 0, A("203.0.113.7"), 9}, dsl), EndpointResult::added);
  ASSERT_EQ(pm.table.size(), 1u);
  EXPECT_EQ(pm.table[0].ifindex, 9);
}
