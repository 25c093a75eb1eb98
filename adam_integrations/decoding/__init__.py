"""What the local backends share between a model's logits and the chunks a user sees,
engine-free (numpy and the core only):

``json_schema`` (a JSON Schema made ready for a grammar) -> ``grammar`` (the grammar plan
for tools, structured output and thinking) -> ``constrained`` (the token mask each step),
plus ``penalties`` (repeat / presence / frequency), ``logprobs`` (top-k log-probabilities)
and ``chunks`` (generated text -> chunks: stop strings, thinking, tool calls, usage).
"""
