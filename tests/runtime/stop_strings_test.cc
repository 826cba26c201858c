// Tests runtime::StopStringMatcher: stop strings split across deltas, held-back prefixes,
// earliest match, overlapping candidates, flush at the end.
#include "runtime/stop_strings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bora::runtime {
namespace {

// Feeds the deltas, returns everything emitted (plus the flush if no stop string completed).
std::string Emitted(std::vector<std::string> stops, const std::vector<std::string>& deltas, bool* stopped = nullptr) {
  StopStringMatcher matcher(std::move(stops));
  std::string out;
  for (const std::string& delta : deltas) {
    StopStringMatcher::Result r = matcher.Push(delta);
    out += r.text;
    if (r.stopped) break;
  }
  if (!matcher.stopped()) out += matcher.Flush();
  if (stopped != nullptr) *stopped = matcher.stopped();
  return out;
}

TEST(StopStringsTest, StopSplitAcrossDeltasIsFoundAndNotEmitted) {
  bool stopped = false;
  EXPECT_EQ(Emitted({"\nUser:"}, {"Hello", " there\nU", "se", "r: more"}, &stopped), "Hello there");
  EXPECT_TRUE(stopped);
}

TEST(StopStringsTest, PossiblePrefixIsHeldBackThenReleased) {
  StopStringMatcher matcher({"END"});
  EXPECT_EQ(matcher.Push("abcE").text, "abc");
  EXPECT_EQ(matcher.Push("N").text, "");
  StopStringMatcher::Result r = matcher.Push("x");
  EXPECT_EQ(r.text, "ENx");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(matcher.Push("EN").text, "");
  EXPECT_EQ(matcher.Flush(), "EN");  // generation ended otherwise: the held text is output
}

TEST(StopStringsTest, EarliestStopWinsAndOverlapsAreHandled) {
  EXPECT_EQ(Emitted({"world", "lo"}, {"hello world"}), "hel");
  EXPECT_EQ(Emitted({"aab"}, {"a", "a", "a", "b", "c"}), "a");
  EXPECT_EQ(Emitted({"stop"}, {"stop"}), "");
  EXPECT_EQ(Emitted({"", "x"}, {"abc"}), "abc");  // empty stop strings ignored
  EXPECT_EQ(Emitted({}, {"a", "b"}), "ab");
}

TEST(StopStringsTest, MultibyteStopStringsKeepCharactersWhole) {
  // "é" is two bytes; the held-back tail starts on a character boundary.
  StopStringMatcher matcher({"été"});
  EXPECT_EQ(matcher.Push("café é").text, "café ");  // "é" could start "été": held
  EXPECT_EQ(matcher.Push("t").text, "");
  StopStringMatcher::Result r = matcher.Push("é!");
  EXPECT_EQ(r.text, "");
  EXPECT_TRUE(r.stopped);
  EXPECT_TRUE(matcher.Push("more").stopped);
  EXPECT_EQ(matcher.Push("more").text, "");
}

}  // namespace
}  // namespace bora::runtime
