"""Tool calling: the model asks for a tool, we run it, the model answers with the result.

With tool_choice="required" (or a tool's name) the call is grammar-constrained, so its
arguments always match the tool's schema, even on a small local model.
"""

import json

from adam_integrations import ChatMessage, ModelManager


def get_weather(city: str, unit: str) -> dict:
    return {"city": city, "temperature": 21 if unit == "celsius" else 70, "sky": "sunny"}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"},
                           "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}

manager = ModelManager()
history = [ChatMessage("user", "What is the weather in Paris, in celsius?")]
first = manager.chat(history, tools=[WEATHER], tool_choice="required", temperature=0.0)
for call in first.tool_calls:
    print(f"model calls {call.name}({call.arguments})  id={call.id}")
    history.append(ChatMessage("assistant", "", tool_calls=[call]))
    history.append(ChatMessage("tool", json.dumps(get_weather(**call.arguments)),
                               tool_call_id=call.id, name=call.name))
final = manager.chat(history, tools=[WEATHER], tool_choice="none", temperature=0.0,
                     max_tokens=60)
print("answer:", final.text)
