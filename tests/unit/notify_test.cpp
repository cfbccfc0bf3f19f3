// tunneld/notify.hpp against a fake service manager: a datagram socket named
// by NOTIFY_SOCKET, as systemd provides it.
#include "../../tunneld/notify.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace {
using namespace std::chrono_literals;

class Notify : public ::testing::Test {
 protected:
  int fd = -1;
  std::string path = "/tmp/tunneld-notify-" + std::to_string(::getpid());
  void SetUp() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
  void listen() {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    ::unlink(path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  std::string next() {
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }
  void TearDown() override {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
    SetUp();
  }
};

TEST_F(Notify, NoOpWithoutAServiceManager) {
  EXPECT_FALSE(tunneld::notify::ready("up"));
  EXPECT_FALSE(tunneld::notify::watchdog());
  EXPECT_FALSE(tunneld::notify::stopping());
  EXPECT_FALSE(tunneld::notify::watchdog_interval());
}

TEST_F(Notify, SendsTheMessagesSystemdExpects) {
  listen();
  EXPECT_TRUE(tunneld::notify::ready("listening on 198.18.0.1:7000"));
  EXPECT_EQ(next(), "READY=1\nSTATUS=listening on 198.18.0.1:7000");
  EXPECT_TRUE(tunneld::notify::status("2 CPEs\n1 pending"));
  EXPECT_EQ(next(), "STATUS=2 CPEs 1 pending");  // one line
  EXPECT_TRUE(tunneld::notify::watchdog());
  EXPECT_EQ(next(), "WATCHDOG=1");
  EXPECT_TRUE(tunneld::notify::stopping());
  EXPECT_EQ(next(), "STOPPING=1");
}

TEST_F(Notify, WatchdogIntervalIsHalfOfWatchdogSec) {
  ::setenv("WATCHDOG_USEC", "30000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  ASSERT_TRUE(tunneld::notify::watchdog_interval());
  EXPECT_EQ(*tunneld::notify::watchdog_interval(), 15s);
  ::setenv("WATCHDOG_PID", "1", 1);  // meant for another process
  EXPECT_FALSE(tunneld::notify::watchdog_interval());
}

}  // namespace
