"""The song behind the ``surprise`` task: "The Star" by Jane Taylor (1806), public domain.

``surprise`` with ``first = n`` yields line ``n``; the client guesses the song.
"""

from __future__ import annotations

LINES: tuple[str, ...] = (
    "Twinkle, twinkle, little star,",
    "How I wonder what you are!",
    "Up above the world so high,",
    "Like a diamond in the sky.",
    "When the blazing sun is gone,",
    "When he nothing shines upon,",
    "Then you show your little light,",
    "Twinkle, twinkle, all the night.",
    "Then the traveller in the dark",
    "Thanks you for your tiny spark;",
    "He could not see which way to go,",
    "If you did not twinkle so.",
    "In the dark blue sky you keep,",
    "And often through my curtains peep,",
    "For you never shut your eye,",
    "Till the sun is in the sky.",
    "'Tis your bright and tiny spark",
    "Lights the traveller in the dark,",
    "Though I know not what you are,",
    "Twinkle, twinkle, little star.",
)
