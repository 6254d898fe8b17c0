#include "common/net.h"

#include <gtest/gtest.h>

namespace ringmail {
namespace {

TEST(SocketAddress, ParsesV4AndV6) {
  auto a = SocketAddress::parse("127.0.0.1:2525");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port(), 2525);
  EXPECT_EQ(a->to_string(), "127.0.0.1:2525");
  auto b = SocketAddress::parse("[::1]:25");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->family(), AF_INET6);
  EXPECT_EQ(b->to_string(), "[::1]:25");
  auto c = SocketAddress::parse("10.1.2.3", 25);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port(), 25);
}

TEST(SocketAddress, RejectsGarbage) {
  EXPECT_FALSE(SocketAddress::parse("localhost:25").ok());
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4:99999").ok());
  EXPECT_FALSE(SocketAddress::parse("1.2.3.4").ok());  // no default port
  EXPECT_FALSE(SocketAddress::parse("[::1").ok());
  EXPECT_EQ(SocketAddress::parse("1.2.3.4").error().message(),
            "bad address '1.2.3.4': a port is required (host:port or [v6]:port)");
}

TEST(SocketAddress, SameHostIgnoresThePort) {
  auto a = *SocketAddress::parse("127.0.0.2:25");
  EXPECT_TRUE(a.same_host(*SocketAddress::parse("127.0.0.2:2525")));
  EXPECT_FALSE(a.same_host(*SocketAddress::parse("127.0.0.3:25")));
  EXPECT_FALSE(a.same_host(*SocketAddress::parse("[::1]:25")));
  EXPECT_TRUE(SocketAddress::parse("[::1]:1")->same_host(*SocketAddress::parse("[::1]:2")));
}

TEST(Cidr, MatchesOnPrefix) {
  auto net = Cidr::parse("127.0.0.0/8");
  ASSERT_TRUE(net.ok());
  EXPECT_TRUE(net->contains(*SocketAddress::parse("127.0.0.1:1")));
  EXPECT_TRUE(net->contains(*SocketAddress::parse("127.255.0.9:1")));
  EXPECT_FALSE(net->contains(*SocketAddress::parse("128.0.0.1:1")));
  EXPECT_TRUE(net->contains(*SocketAddress::parse("[::ffff:127.0.0.2]:1")));  // v4-mapped
  auto one = Cidr::parse("127.0.0.1");
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->contains(*SocketAddress::parse("127.0.0.2:1")));
  auto v6 = Cidr::parse("::1/128");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->contains(*SocketAddress::parse("[::1]:1")));
  EXPECT_FALSE(v6->contains(*SocketAddress::parse("127.0.0.1:1")));
  auto odd = Cidr::parse("10.0.0.0/9");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->contains(*SocketAddress::parse("10.127.0.1:1")));
  EXPECT_FALSE(odd->contains(*SocketAddress::parse("10.128.0.1:1")));
}

TEST(Cidr, RejectsBadInput) {
  EXPECT_FALSE(Cidr::parse("127.0.0.0/33").ok());
  EXPECT_FALSE(Cidr::parse("example.com/8").ok());
  EXPECT_FALSE(Cidr::parse("10.0.0.0/").ok());
}

TEST(NetworkList, ParsesLists) {
  auto l = NetworkList::parse("127.0.0.0/8, ::1/128");
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->contains(*SocketAddress::parse("127.0.0.5:1")));
  EXPECT_TRUE(l->contains(*SocketAddress::parse("[::1]:1")));
  EXPECT_FALSE(l->contains(*SocketAddress::parse("192.0.2.1:1")));
  EXPECT_EQ(l->to_string(), "127.0.0.0/8,::1/128");
  EXPECT_FALSE(NetworkList::parse("127.0.0.0/8,nonsense").ok());
}

}  // namespace
}  // namespace ringmail
