// How the admin plane shows queues and messages: JSON documents for scripts and aligned text
// tables for people (the server renders both, so the ringmail-queue CLI needs no JSON parser).
// Pure functions of the backend's structs and the current time; field names are in docs/admin.md.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "engine/admin/admin_backend.h"

namespace ringmail::admin {

std::string queues_json(const std::vector<QueueInfo>& queues, WallTime now);
std::string messages_json(std::string_view queue_id, const MessageList& list, WallTime now);
std::string message_json(const MessageInfo& message, WallTime now);
std::string action_json(const ActionResult& result);
std::string error_json(std::string_view message);

std::string queues_table(const std::vector<QueueInfo>& queues, WallTime now);
std::string messages_table(std::string_view queue_id, const MessageList& list, WallTime now);
std::string message_text(const MessageInfo& message, WallTime now);

// "2026-11-28T05:00:00Z"; "" for the epoch (not set).
std::string iso8601(WallTime t);
// Compact durations for tables: "45s", "4m12s", "3h05m", "2d03h"; negative shows as "now".
std::string short_duration(std::chrono::seconds d);

}  // namespace ringmail::admin
