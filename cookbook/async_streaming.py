"""Async streaming keeps the event loop free; cancelling the task stops generation."""

import asyncio

from adam_integrations import ModelManager


async def main() -> None:
    manager = ModelManager()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(0.25)
            print(" [loop alive]", end="", flush=True)

    beat = asyncio.create_task(heartbeat())
    async for piece in manager.agenerate_stream("Explain what an event loop is.",
                                                temperature=0.0, max_tokens=60):
        print(piece, end="", flush=True)
    beat.cancel()

    async def long_story() -> None:
        async for piece in manager.agenerate_stream("Tell a very long story.", max_tokens=500):
            print(piece, end="", flush=True)

    task = asyncio.create_task(long_story())
    await asyncio.sleep(1.0)
    task.cancel()  # generation stops at the next token
    await asyncio.gather(task, return_exceptions=True)
    print("\n(cancelled)")


asyncio.run(main())
