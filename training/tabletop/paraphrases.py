"""Two independent open-vocabulary label sets for the tabletop steps.

A paraphrase names the same step in other words, as a user who never saw our labels might:
`TEST` is scored once, over the test episodes (split "paraphrase"); `VAL` was written
separately, in different wording, and is the only set open-vocabulary weights and choices are
tuned on, over the val episodes (split "paraphrase-val"). Tuning on `TEST` would make its
score a fit, not a measurement.

Rules for both sets, checked by `check` (and by the tests): every step has one paraphrase;
no paraphrase equals (ignoring case and punctuation) any training label or any step
description; none contains a training label; none repeats within its set; and the two sets
differ at every step. What is *not* a rule: avoiding the step's nouns. "cut the tomato into
rounds" is a fair rewording of "slice the tomato"; forbidding every shared word would test
synonym lookup, not planning.
"""
from __future__ import annotations

import re

from training.tabletop.world import STEPS

# step key -> paraphrase, scored once over the test episodes
TEST: dict[str, str] = {
    # drinks
    "take_cup": "get the mug down off the rack",
    "take_plate": "get a dish down off the rack",
    "fill_kettle": "top up the electric boiler from the tap",
    "boil_kettle": "switch the electric boiler on until it bubbles",
    "pour_kettle": "fill the mug from the boiled electric boiler",
    "add_teabag": "drop a sachet of leaves into the mug",
    "remove_teabag": "lift the used sachet from the mug",
    "open_milk": "unscrew the cap of the dairy box",
    "add_milk": "pour a splash of dairy in the mug",
    "add_sugar": "sweeten the mug with a spoonful of sweetener",
    "stir_cup": "mix the drink with a teaspoon",
    "open_jar": "unscrew the lid of the coffee tin",
    "spoon_coffee": "scoop ground beans into the mug",
    "close_jar": "put the lid back on the coffee tin",
    # dishes
    "cup_to_sink": "place the mug into the basin",
    "scrub_cup": "wash the mug with soap and a sponge",
    "rinse_cup": "run the mug under the tap",
    "dry_cup": "wipe the mug with a towel",
    "shelve_cup": "return the mug to the rack",
    "plate_to_sink": "place the dish into the basin",
    "scrub_plate": "wash the dish with soap and a sponge",
    "rinse_plate": "run the dish under the tap",
    "dry_plate": "wipe the dish with a towel",
    "shelve_plate": "return the dish to the rack",
    # salads and sandwiches
    "wash_lettuce": "clean the leafy greens in the basin",
    "tear_lettuce": "rip the leaves into pieces over the salad bowl",
    "slice_tomato": "cut the tomato into rounds",
    "dice_tomato": "cut the tomato into tiny cubes",
    "tomato_to_bowl": "add the cut tomato to the salad bowl",
    "tomato_to_plate": "lay the tomato rounds on the dish",
    "tomato_to_pot": "tip the tomato cubes into the saucepan",
    "peel_cucumber": "remove the skin of the cucumber",
    "slice_cucumber": "cut the cucumber into discs",
    "cucumber_to_bowl": "tip the cucumber discs into the salad bowl",
    "dress_salad": "dress the greens with olive oil",
    "toss_salad": "mix the salad bowl with two spoons",
    "slice_bread": "cut a few pieces off the loaf",
    "toast_bread": "brown the slices in the toaster",
    "bread_to_plate": "lay the slices on a dish",
    "butter_bread": "spread some butter on the slices",
    "slice_cheese": "cut thin pieces of cheese",
    "cheese_to_plate": "lay the cheese pieces on the dish",
    # cooking
    "fill_pot": "run water into the saucepan",
    "pot_to_stove": "set the saucepan on the hob",
    "boil_pot": "heat the saucepan until the water bubbles",
    "egg_to_pot": "set the egg into the simmering saucepan",
    "egg_to_bowl": "lift the cooked egg into a bowl",
    "peel_egg": "remove the eggshell",
    "salt_egg": "season the egg",
    "pan_to_stove": "set the frying pan on the hob",
    "heat_pan": "warm up the frying pan",
    "oil_pan": "add a little olive oil to the frying pan",
    "crack_egg": "break the egg over the frying pan",
    "flip_egg": "turn the egg over with a spatula",
    "egg_to_plate": "slide the fried egg onto a dish",
    "peel_potato": "scrape the skin off the potato",
    "dice_potato": "cut the potato into small chunks",
    "potato_to_pot": "drop the potato into the saucepan",
    "drain_pot": "empty the saucepan water into the basin",
    "potato_to_bowl": "tip the cooked potato into a bowl",
    "mash_potato": "crush the potato with a masher",
    "butter_bowl": "stir a knob of butter into the mash",
    "pasta_to_pot": "drop the noodles into the saucepan",
    "pasta_to_plate": "serve the noodles on a dish",
    "stir_pot": "mix the saucepan with a ladle",
    "peel_carrot": "scrape the skin off the carrot",
    "slice_carrot": "cut the carrot into coins",
    "carrot_to_pot": "tip the carrot coins into the saucepan",
    # fruit and lemonade
    "peel_banana": "strip the skin off the banana",
    "slice_banana": "cut the banana into rounds",
    "banana_to_bowl": "add the banana rounds to the fruit bowl",
    "peel_apple": "pare the skin off the apple",
    "slice_apple": "cut the apple into segments",
    "dice_apple": "chop the apple into cubes",
    "apple_to_bowl": "add the apple pieces to the fruit bowl",
    "slice_lemon": "halve the lemon with a knife",
    "squeeze_lemon": "press the lemon juice into the pitcher",
    "fill_jug": "pour cold water into the pitcher",
    "sugar_jug": "sweeten the pitcher with sweetener",
    "stir_jug": "mix the pitcher with a long spoon",
    "pour_jug": "serve the drink from the pitcher into the mug",
}

# step key -> paraphrase, written apart from TEST; for tuning over the val episodes only
VAL: dict[str, str] = {
    # drinks
    "take_cup": "grab a clean teacup from the cupboard",
    "take_plate": "fetch a platter out of the cupboard",
    "fill_kettle": "pour tap water into the kettle",
    "boil_kettle": "heat up the kettle until it whistles",
    "pour_kettle": "pour the boiling water into the teacup",
    "add_teabag": "dunk a teabag into the teacup",
    "remove_teabag": "fish the teabag out of the drink",
    "open_milk": "unseal the carton of milk",
    "add_milk": "pour a little milk into the drink",
    "add_sugar": "tip a spoonful of sugar into the teacup",
    "stir_cup": "give the teacup a good stir",
    "open_jar": "twist open the jar of coffee",
    "spoon_coffee": "add a scoop of instant coffee to the teacup",
    "close_jar": "seal the jar of coffee again",
    # dishes
    "cup_to_sink": "take the used teacup to the sink",
    "scrub_cup": "clean the teacup with a soapy brush",
    "rinse_cup": "hold the teacup under the running faucet",
    "dry_cup": "towel the teacup dry",
    "shelve_cup": "put the teacup away in the cupboard",
    "plate_to_sink": "take the dirty platter to the sink",
    "scrub_plate": "clean the platter with a soapy brush",
    "rinse_plate": "hold the platter under the running faucet",
    "dry_plate": "towel the platter dry",
    "shelve_plate": "put the platter away in the cupboard",
    # salads and sandwiches
    "wash_lettuce": "rinse the lettuce leaves under the faucet",
    "tear_lettuce": "shred the lettuce by hand into the bowl",
    "slice_tomato": "carve the tomato into thin slices",
    "dice_tomato": "cut the tomato into little squares",
    "tomato_to_bowl": "move the cut tomato into the mixing bowl",
    "tomato_to_plate": "arrange the tomato slices on a platter",
    "tomato_to_pot": "throw the diced tomato into the stockpot",
    "peel_cucumber": "take the skin off the cucumber",
    "slice_cucumber": "cut the cucumber into thin rounds",
    "cucumber_to_bowl": "add the sliced cucumber to the mixing bowl",
    "dress_salad": "pour a little olive oil on the salad",
    "toss_salad": "mix the salad together well",
    "slice_bread": "cut the loaf into slices",
    "toast_bread": "crisp the bread in the toaster",
    "bread_to_plate": "set the bread slices on a platter",
    "butter_bread": "smear butter on the bread slices",
    "slice_cheese": "shave slices off the cheese",
    "cheese_to_plate": "arrange the cheese slices on a platter",
    # cooking
    "fill_pot": "fill the stockpot from the tap",
    "pot_to_stove": "place the stockpot on the burner",
    "boil_pot": "heat the stockpot until the water boils",
    "egg_to_pot": "drop the egg into the hot water in the stockpot",
    "egg_to_bowl": "scoop the boiled egg out into a bowl",
    "peel_egg": "shell the boiled egg",
    "salt_egg": "add a pinch of salt to the egg",
    "pan_to_stove": "place the skillet on the burner",
    "heat_pan": "let the skillet get hot",
    "oil_pan": "drizzle some oil in the skillet",
    "crack_egg": "break an egg into the hot skillet",
    "flip_egg": "turn over the frying egg",
    "egg_to_plate": "move the fried egg from the skillet to a platter",
    "peel_potato": "take the peel off the potato",
    "dice_potato": "cut the potato into small squares",
    "potato_to_pot": "lower the potato into the stockpot of boiling water",
    "drain_pot": "pour the water off in the sink",
    "potato_to_bowl": "lift the cooked potato out into a bowl",
    "mash_potato": "pound the cooked potato until smooth",
    "butter_bowl": "put a pat of butter in the bowl",
    "pasta_to_pot": "tip the dry spaghetti into the boiling water",
    "pasta_to_plate": "dish up the drained spaghetti on a platter",
    "stir_pot": "give the stockpot a stir with a spoon",
    "peel_carrot": "take the peel off the carrot",
    "slice_carrot": "chop the carrot into thin rounds",
    "carrot_to_pot": "add the sliced carrot to the stockpot",
    # fruit and lemonade
    "peel_banana": "take the skin off the banana",
    "slice_banana": "chop the banana into thin rounds",
    "banana_to_bowl": "put the sliced banana into a bowl",
    "peel_apple": "remove the peel from the apple",
    "slice_apple": "cut the apple into slices",
    "dice_apple": "cut the apple into little squares",
    "apple_to_bowl": "move the cut apple into a bowl",
    "slice_lemon": "split the lemon into two halves",
    "squeeze_lemon": "juice the lemon halves into the carafe",
    "fill_jug": "fill the carafe from the cold tap",
    "sugar_jug": "sweeten the lemonade with sugar",
    "stir_jug": "mix the lemonade in the carafe",
    "pour_jug": "fill the teacup with lemonade from the carafe",
}

SETS: dict[str, dict[str, str]] = {"test": TEST, "val": VAL}


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces: what "the same words" means here."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def paraphrase_labels(name: str) -> tuple[str, ...]:
    """The paraphrases of set `name` ("test" or "val") in global step-id order."""
    if name not in SETS:
        raise ValueError(f"unknown paraphrase set {name!r}: expected one of {sorted(SETS)}")
    return tuple(SETS[name][step.key] for step in STEPS)


# words that carry no step: a paraphrase that keeps "the" keeps nothing of the label
FUNCTION_WORDS = frozenset({"a", "an", "the", "of", "to", "in", "into", "on", "from", "with", "out", "over", "and",
                            "up", "off", "for", "it", "its", "at", "by"})


def label_words_kept(name: str) -> float:
    """How close set `name` stays to the training labels: per step, the share of the label's
    content words (FUNCTION_WORDS left out) that its paraphrase also contains, averaged over the
    steps. A set that keeps more of them is easier for text matching, so the two sets' values
    say how far a score on paraphrase-val over-predicts the same score on the test paraphrases."""
    para = SETS[name]
    shares = []
    for step in STEPS:
        words = [w for w in normalise(step.label).split() if w not in FUNCTION_WORDS]
        kept = set(normalise(para[step.key]).split())
        shares.append(sum(w in kept for w in words) / len(words))
    return sum(shares) / len(shares)


def check(name: str) -> list[str]:
    """Every broken rule of set `name`, as readable sentences (empty: the set is valid)."""
    para = SETS[name]
    problems = [f"{name}: no paraphrase for step {s.key!r}" for s in STEPS if s.key not in para]
    problems += [f"{name}: {k!r} is not a step" for k in sorted(set(para) - {s.key for s in STEPS})]
    labels = {normalise(s.label) for s in STEPS}
    taken = labels | {normalise(s.description) for s in STEPS}
    seen: dict[str, str] = {}
    for key, text in para.items():
        words = normalise(text)
        if words in taken:
            problems.append(f"{name}: {key!r} paraphrase {text!r} equals a training label or description")
        problems += [f"{name}: {key!r} paraphrase {text!r} contains the training label {label!r}"
                     for label in sorted(labels) if label in words]
        if words in seen:
            problems.append(f"{name}: {key!r} and {seen[words]!r} share the paraphrase {text!r}")
        seen[words] = key
    others = [o for o in SETS if o != name]
    problems += [f"{name}: {key!r} paraphrase {text!r} also appears in the {other} set"
                 for other in others for key, text in para.items()
                 if normalise(text) in {normalise(t) for t in SETS[other].values()}]
    return problems
