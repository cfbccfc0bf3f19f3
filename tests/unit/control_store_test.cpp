// The sender's message store, target resolution and the admin command's
// output formats.
#include <tunnel/control_format.hpp>
#include <tunnel/message_store.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {
using namespace tunnel::control;
using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;
using Strings = std::vector<std::string>;

Bytes bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

Completion result(Status s, std::int16_t exit_code, std::string_view body, bool truncated = false) {
  return Completion{0, s, exit_code, truncated, bytes_of(body)};
}

// ------------------------------------------------------------ targets

struct Table {
  Strings g1{"lab"}, g2{"lab", "north"}, none{};
  std::vector<PeerEntry> rows{{"cpe-b", g1}, {"cpe-a", g2}, {"cpe-c", none}};
};

TEST(ControlStore, ResolvesIdsGroupsAndAll) {
  Table t;
  TargetSpec by_id{{"cpe-c", "cpe-x", "cpe-a", "cpe-x"}, {}, false};
  Resolution r = resolve_targets(by_id, t.rows);
  EXPECT_EQ(r.peers, (Strings{"cpe-a", "cpe-c"}));
  EXPECT_EQ(r.unknown, (Strings{"cpe-x"}));

  r = resolve_targets(TargetSpec{{}, {"lab"}, false}, t.rows);
  EXPECT_EQ(r.peers, (Strings{"cpe-a", "cpe-b"}));
  EXPECT_TRUE(r.unknown.empty());

  r = resolve_targets(TargetSpec{{"cpe-c"}, {"north"}, false}, t.rows);
  EXPECT_EQ(r.peers, (Strings{"cpe-a", "cpe-c"}));

  r = resolve_targets(TargetSpec{{}, {}, true}, t.rows);
  EXPECT_EQ(r.peers, (Strings{"cpe-a", "cpe-b", "cpe-c"}));

  r = resolve_targets(TargetSpec{{}, {"nobody"}, false}, t.rows);
  EXPECT_TRUE(r.peers.empty());
  EXPECT_TRUE(r.unknown.empty());
}

// ------------------------------------------------------------ store

TEST(ControlStore, OneMsgIdForAllTargets) {
  MessageStore s;
  const Clock::time_point t0{};
  const Strings peers{"cpe-a", "cpe-b"}, unknown{"cpe-x"};
  ASSERT_EQ(s.add(77, "cfg", peers, unknown, t0), MessageStore::AddError::ok);
  EXPECT_EQ(s.add(77, "cfg", peers, {}, t0), MessageStore::AddError::duplicate_id);
  const SentMessage* m = s.find(77);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->targets.size(), 3u);
  EXPECT_EQ(m->targets[0].status, TargetStatus::pending);
  EXPECT_EQ(m->targets[2].peer, "cpe-x");
  EXPECT_EQ(m->targets[2].status, TargetStatus::unknown);
  EXPECT_FALSE(m->complete());

  EXPECT_EQ(s.record(77, "cpe-b", result(Status::done, 0, "ok"), t0 + 1s), MessageStore::RecordError::ok);
  EXPECT_EQ(s.record(77, "cpe-b", result(Status::done, 0, "ok"), t0 + 1s), MessageStore::RecordError::already_final);
  EXPECT_EQ(s.record(77, "cpe-x", result(Status::done, 0, ""), t0), MessageStore::RecordError::unknown_peer);
  EXPECT_EQ(s.record(78, "cpe-a", result(Status::done, 0, ""), t0), MessageStore::RecordError::unknown_msg);
  EXPECT_FALSE(s.find(77)->complete());
  EXPECT_EQ(s.record(77, "cpe-a", result(Status::failed, 130, "x"), t0 + 2s), MessageStore::RecordError::ok);
  m = s.find(77);
  EXPECT_TRUE(m->complete());
  EXPECT_EQ(m->finished, t0 + 2s);
  EXPECT_EQ(m->targets[0].status, TargetStatus::failed);
  EXPECT_EQ(m->targets[0].exit_code, 130);
  EXPECT_EQ(m->targets[1].body, bytes_of("ok"));
}

TEST(ControlStore, ResultsAreKeptTenMinutesAfterTheLast) {
  MessageStore s;
  const Clock::time_point t0{};
  const Strings one{"cpe-a"};
  ASSERT_EQ(s.add(1, "t", one, {}, t0), MessageStore::AddError::ok);
  ASSERT_EQ(s.add(2, "t", one, {}, t0), MessageStore::AddError::ok);
  ASSERT_EQ(s.record(1, "cpe-a", result(Status::done, 0, ""), t0 + 1min), MessageStore::RecordError::ok);
  s.expire(t0 + 10min);
  EXPECT_TRUE(s.find(1));
  s.expire(t0 + 11min);
  EXPECT_FALSE(s.find(1));
  EXPECT_TRUE(s.find(2));  // still pending
  s.expire(t0 + 24h);
  EXPECT_FALSE(s.find(2));  // pending past max_age
}

TEST(ControlStore, AFullStoreRefusesRatherThanDropAResultWithinItsTenMinutes) {
  MessageStore s(10min, 24h, 2);
  const Clock::time_point t0{};
  const Strings one{"cpe-a"};
  ASSERT_EQ(s.add(1, "t", one, {}, t0), MessageStore::AddError::ok);
  ASSERT_EQ(s.add(2, "t", one, {}, t0 + 1s), MessageStore::AddError::ok);
  EXPECT_EQ(s.add(3, "t", one, {}, t0 + 2s), MessageStore::AddError::full);  // both pending
  ASSERT_EQ(s.record(2, "cpe-a", result(Status::done, 0, ""), t0 + 3s), MessageStore::RecordError::ok);
  // 2 is finished, but only just: it stays for `tunneld result`, the send is refused.
  EXPECT_EQ(s.add(3, "t", one, {}, t0 + 4s), MessageStore::AddError::full);
  EXPECT_EQ(s.add(3, "t", one, {}, t0 + 3s + 10min - 1ms), MessageStore::AddError::full);
  EXPECT_TRUE(s.find(2));
  EXPECT_EQ(s.size(), 2u);
  // Its ten minutes are up: it makes room, the pending one stays.
  EXPECT_EQ(s.add(3, "t", one, {}, t0 + 3s + 10min), MessageStore::AddError::ok);
  EXPECT_TRUE(s.find(1));
  EXPECT_FALSE(s.find(2));
  EXPECT_TRUE(s.find(3));
  // A pending record makes room only at max_age.
  EXPECT_EQ(s.add(4, "t", one, {}, t0 + 23h), MessageStore::AddError::full);
  EXPECT_EQ(s.add(4, "t", one, {}, t0 + 24h), MessageStore::AddError::ok);
  EXPECT_FALSE(s.find(1));
  EXPECT_EQ(s.max_messages(), 2u);
}

TEST(ControlStore, MsgIdsAreUniqueAndPrintable) {
  MsgIdSource a(0x1234), b(0x1235);
  const std::uint64_t x = a.next(), y = a.next();
  EXPECT_NE(x, y);
  EXPECT_NE(x, b.next());
  EXPECT_EQ(format_msg_id(x), "0000123400000001");
  EXPECT_EQ(parse_msg_id("0000123400000001"), x);
  EXPECT_EQ(parse_msg_id("ABCdef"), 0xabcdefu);
  EXPECT_FALSE(parse_msg_id(""));
  EXPECT_FALSE(parse_msg_id("0"));
  EXPECT_FALSE(parse_msg_id("12345678901234567"));
  EXPECT_FALSE(parse_msg_id("12g4"));
  MsgIdSource wrap(0);
  EXPECT_NE(wrap.next(), 0u);
}

// ------------------------------------------------------------ format

SentMessage sample() {
  SentMessage m;
  m.msg_id = 0xab;
  m.targets.push_back({"cpe-a", TargetStatus::done, 0, false, bytes_of("line1\nline2\\x\t")});
  m.targets.push_back({"cpe-b", TargetStatus::timeout, kNoExit, false, {}});
  m.targets.push_back({"cpe-x", TargetStatus::unknown, kNoExit, false, {}});
  m.targets.push_back({"cpe-c", TargetStatus::failed, 127, true, bytes_of("\"q\"\x01\x7f")});
  return m;
}

TEST(ControlFormat, OneLinePerTarget) {
  EXPECT_EQ(format_lines(sample()),
            "cpe-a done 0 line1\\nline2\\\\x\\t\n"
            "cpe-b timeout -\n"
            "cpe-x unknown -\n"
            "cpe-c failed 127 \"q\"\\x01\\x7f\n");
}

TEST(ControlFormat, JsonArray) {
  EXPECT_EQ(format_json(sample()),
            R"([{"peer":"cpe-a","msg_id":"00000000000000ab","status":"done","exit":0,"result":"line1\nline2\\x\u0009","truncated":false},)"
            R"({"peer":"cpe-b","msg_id":"00000000000000ab","status":"timeout","exit":null,"result":"","truncated":false},)"
            R"({"peer":"cpe-x","msg_id":"00000000000000ab","status":"unknown","exit":null,"result":"","truncated":false},)"
            "{\"peer\":\"cpe-c\",\"msg_id\":\"00000000000000ab\",\"status\":\"failed\",\"exit\":127,"
            "\"result\":\"\\\"q\\\"\\u0001\x7f\",\"truncated\":true}]");
  EXPECT_EQ(format_json(SentMessage{}), "[]");
}

TEST(ControlFormat, JsonStringKeepsUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(json_string(bytes_of("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80")),
            "\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate.
  EXPECT_EQ(json_string(Bytes{0x80, 'a', 0xe2, 0x82, 'b', 0xc0, 0xaf, 0xed, 0xa0, 0x80}),
            "\"\xef\xbf\xbd" "a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

TEST(ControlFormat, ExitCodeRule) {
  std::vector<TargetResult> t;
  EXPECT_EQ(exit_code_for(t), 1);  // no target at all
  t.push_back({"a", TargetStatus::done, 0, false, {}});
  EXPECT_EQ(exit_code_for(t), 0);
  t.push_back({"b", TargetStatus::done, 3, false, {}});
  EXPECT_EQ(exit_code_for(t), 1);  // answered, but not with 0
  t.back().exit_code = 0;
  EXPECT_EQ(exit_code_for(t), 0);
  for (TargetStatus s : {TargetStatus::failed, TargetStatus::timeout, TargetStatus::busy, TargetStatus::no_handler,
                         TargetStatus::session_ended, TargetStatus::unknown, TargetStatus::pending}) {
    t.back().status = s;
    EXPECT_EQ(exit_code_for(t), 1) << to_string(s);
  }
}

TEST(ControlFormat, StatusNames) {
  EXPECT_EQ(to_string(TargetStatus::no_handler), "no-handler");
  EXPECT_EQ(to_string(TargetStatus::session_ended), "session-ended");
  EXPECT_EQ(to_string(TargetStatus::pending), "pending");
  for (std::uint8_t s = 0; s <= kMaxStatus; ++s)
    EXPECT_EQ(to_string(target_status(static_cast<Status>(s))), to_string(static_cast<Status>(s)));
}

}  // namespace
