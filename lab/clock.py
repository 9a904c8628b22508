"""One time factor for every simulated delay, so KKP's "up to 5 minutes" can take a second in tests."""

from __future__ import annotations

import asyncio


class Clock:
    def __init__(self, factor: float = 1.0):
        if factor < 0:
            raise ValueError("time factor must be >= 0")
        self.factor = factor

    def scaled(self, seconds: float) -> float:
        """Wall seconds that `seconds` of simulated time take."""
        return seconds * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.scaled(seconds))

    def later(self, seconds: float, callback, *args) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(self.scaled(seconds), callback, *args)
