"""Streaming, sync and async: pieces as they are generated; cancelling stops generation."""

import asyncio

from adam_integrations import ModelManager

manager = ModelManager()

for piece in manager.generate_stream("Tell a short story about a robot.", max_tokens=64,
                                     temperature=0.0):
    print(piece, end="", flush=True)
print()


async def main() -> None:
    async for piece in manager.agenerate_stream("Count from one to five.", max_tokens=32):
        print(piece, end="", flush=True)
    print()
    # Cancelling the task stops the generation at the next token; the loop never blocked.
    task = asyncio.create_task(manager.agenerate_response("Write a long essay.",
                                                          max_tokens=2000))
    await asyncio.sleep(0.2)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("cancelled")


asyncio.run(main())
