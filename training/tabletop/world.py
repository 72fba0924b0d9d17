"""The tabletop world: objects with a symbolic state, and the steps that change it.

A state maps an object name to its `ObjectState` (where it is, its form, temperature, what it
holds, its lid, how clean it is, and surface marks such as sugar or butter). A step is declared
as preconditions and effects over those attributes, written in a tiny "obj.attr=value" language
so the step table below reads like the world it describes. The same declarations produce the
SCHEMA-style before/after state sentences, so descriptions never drift from what the renderer
draws.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

# object name -> the attributes it starts with (tasks may override them)
OBJECT_DEFAULTS: dict[str, dict] = {
    "cup": {"loc": "shelf"},
    "plate": {"loc": "shelf"},
    "bowl": {},
    "kettle": {},
    "pot": {},
    "pan": {},
    "jug": {},
    "teabag": {},
    "milk": {"lid": "closed", "fill": "milk", "level": 2},
    "sugar": {"fill": "sugar", "level": 2},
    "jar": {"lid": "closed", "fill": "coffee", "level": 2},
    "tomato": {}, "cucumber": {}, "lettuce": {"clean": "dirty"}, "bread": {}, "cheese": {},
    "egg": {}, "potato": {}, "carrot": {}, "apple": {}, "banana": {}, "lemon": {}, "pasta": {},
    # props: drawn, never changed; their presence tells what a mark is made of
    "butter": {}, "oil": {}, "salt": {},
}
CONTAINERS = ("cup", "plate", "bowl", "kettle", "pot", "pan", "jug", "jar", "milk", "sugar")
PROPS_FOR_MARK = {"butter": "butter", "oil": "oil", "salt": "salt"}


@dataclass(frozen=True)
class ObjectState:
    loc: str = "table"  # shelf, table, sink, stove, or the name of a container object
    form: str = "whole"  # whole, peeled, sliced, diced, mashed, torn, cracked, squeezed
    temp: str = "cold"  # cold, hot
    fill: str = ""  # what it holds: water, tea, coffee, milk, sugar, lemonade ("" = nothing)
    level: int = 0  # 0 empty, 1 half, 2 full
    lid: str = ""  # open, closed ("" = has no lid)
    clean: str = "clean"  # dirty, soapy, wet, clean
    marks: frozenset[str] = field(default_factory=frozenset)


State = dict[str, ObjectState]


@dataclass(frozen=True)
class Condition:
    """One "obj.attr=value" term. For `marks`, value is a mark that must be present / is added."""

    obj: str
    attr: str
    values: tuple  # accepted values (preconditions) or the single new value (effects)

    @staticmethod
    def parse(term: str) -> "Condition":
        try:
            lhs, rhs = term.split("=")
            obj, attr = lhs.strip().split(".")
        except ValueError:
            raise ValueError(f"bad world term {term!r}: expected 'obj.attr=value'") from None
        if obj not in OBJECT_DEFAULTS or attr not in ObjectState.__dataclass_fields__:
            raise ValueError(f"bad world term {term!r}: unknown object or attribute")
        values = tuple(int(v) if attr == "level" else ("" if v == "none" else v) for v in rhs.strip().split("|"))
        return Condition(obj, attr, values)

    def holds(self, state: State) -> bool:
        value = getattr(state[self.obj], self.attr)
        return any(v in value for v in self.values) if self.attr == "marks" else value in self.values


def _terms(spec: str) -> tuple[Condition, ...]:
    return tuple(Condition.parse(t) for t in spec.split(";") if t.strip())


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    description: str
    pre: tuple[Condition, ...]
    post: tuple[Condition, ...]

    @property
    def objects(self) -> set[str]:
        names = {c.obj for c in self.pre + self.post}
        names |= {v for c in self.pre + self.post if c.attr == "loc" for v in c.values if v in CONTAINERS}
        names |= {PROPS_FOR_MARK[c.values[0]] for c in self.post if c.attr == "marks" and c.values[0] in PROPS_FOR_MARK}
        return names


def _step(key: str, label: str, description: str, pre: str, post: str) -> Step:
    return Step(key, label, description, _terms(pre), _terms(post))


def _washing(obj: str, noun: str) -> list[Step]:
    """The five dish-washing steps for one piece of crockery (cup and plate share the recipe)."""
    return [
        _step(f"{obj}_to_sink", f"put the {obj} in the sink",
              f"Carry the dirty {noun} over to the sink.", f"{obj}.clean=dirty; {obj}.loc=table", f"{obj}.loc=sink"),
        _step(f"scrub_{obj}", f"scrub the {obj}",
              f"Scrub the {noun} with a soapy sponge.", f"{obj}.loc=sink; {obj}.clean=dirty", f"{obj}.clean=soapy"),
        _step(f"rinse_{obj}", f"rinse the {obj}",
              f"Rinse the soap off the {noun} with running water.", f"{obj}.clean=soapy", f"{obj}.clean=wet"),
        _step(f"dry_{obj}", f"dry the {obj}",
              f"Dry the {noun} with a tea towel and set it down.", f"{obj}.clean=wet", f"{obj}.clean=clean; {obj}.loc=table"),
        _step(f"shelve_{obj}", f"put the {obj} on the shelf",
              f"Put the clean {noun} away on the shelf.", f"{obj}.clean=clean; {obj}.loc=table", f"{obj}.loc=shelf"),
    ]


STEPS: tuple[Step, ...] = (
    # drinks
    _step("take_cup", "take the cup from the shelf",
          "Take a clean cup down from the shelf.", "cup.loc=shelf", "cup.loc=table"),
    _step("take_plate", "take the plate from the shelf",
          "Take a clean plate down from the shelf.", "plate.loc=shelf", "plate.loc=table"),
    _step("fill_kettle", "fill the kettle with water",
          "Fill the kettle with cold tap water.", "kettle.level=0", "kettle.fill=water; kettle.level=2"),
    _step("boil_kettle", "boil the kettle",
          "Switch the kettle on and let the water boil.", "kettle.level=2; kettle.temp=cold", "kettle.temp=hot"),
    _step("pour_kettle", "pour hot water into the cup",
          "Pour boiling water from the kettle into the cup.", "kettle.temp=hot; cup.loc=table; cup.level=0",
          "cup.fill=water; cup.level=2; cup.temp=hot; kettle.level=1"),
    _step("add_teabag", "put a tea bag in the cup",
          "Put a tea bag into the cup.", "teabag.loc=table; cup.loc=table", "teabag.loc=cup"),
    _step("remove_teabag", "take the tea bag out",
          "Lift the steeped tea bag out of the cup.", "teabag.loc=cup; cup.level=2", "teabag.loc=table; teabag.clean=dirty"),
    _step("open_milk", "open the milk carton",
          "Unscrew the cap of the milk carton.", "milk.lid=closed", "milk.lid=open"),
    _step("add_milk", "add milk to the cup",
          "Add a splash of milk to the drink.", "milk.lid=open; cup.level=2", "cup.marks=milk; milk.level=1"),
    _step("add_sugar", "add sugar to the cup",
          "Spoon sugar from the sugar bowl into the cup.", "sugar.level=2; cup.loc=table", "cup.marks=sugar; sugar.level=1"),
    _step("stir_cup", "stir the cup",
          "Stir the drink with a spoon.", "cup.level=2", "cup.marks=stirred"),
    _step("open_jar", "open the coffee jar",
          "Unscrew the lid of the coffee jar.", "jar.lid=closed", "jar.lid=open"),
    _step("spoon_coffee", "spoon coffee into the cup",
          "Scoop instant coffee from the jar into the cup.", "jar.lid=open; cup.loc=table", "cup.marks=coffee; jar.level=1"),
    _step("close_jar", "close the coffee jar",
          "Screw the lid back onto the coffee jar.", "jar.lid=open", "jar.lid=closed"),
    # dishes
    *_washing("cup", "cup"),
    *_washing("plate", "plate"),
    # salads and sandwiches
    _step("wash_lettuce", "wash the lettuce",
          "Wash the soil off the lettuce in the sink.", "lettuce.clean=dirty", "lettuce.clean=wet; lettuce.loc=sink"),
    _step("tear_lettuce", "tear the lettuce into the bowl",
          "Tear the washed lettuce into pieces over the bowl.", "lettuce.clean=wet; lettuce.form=whole",
          "lettuce.form=torn; lettuce.loc=bowl"),
    _step("slice_tomato", "slice the tomato",
          "Cut the tomato into round slices.", "tomato.form=whole", "tomato.form=sliced"),
    _step("dice_tomato", "dice the tomato",
          "Chop the tomato into small cubes.", "tomato.form=whole", "tomato.form=diced"),
    _step("tomato_to_bowl", "put the tomato in the bowl",
          "Add the cut tomato to the bowl.", "tomato.loc=table; tomato.form=sliced|diced", "tomato.loc=bowl"),
    _step("tomato_to_plate", "put the tomato on the plate",
          "Lay the tomato slices on the plate.", "tomato.loc=table; tomato.form=sliced; plate.loc=table", "tomato.loc=plate"),
    _step("tomato_to_pot", "put the tomato in the pot",
          "Add the chopped tomato to the pot.", "tomato.loc=table; tomato.form=diced", "tomato.loc=pot"),
    _step("peel_cucumber", "peel the cucumber",
          "Peel the dark green skin off the cucumber.", "cucumber.form=whole", "cucumber.form=peeled"),
    _step("slice_cucumber", "slice the cucumber",
          "Cut the cucumber into thin discs.", "cucumber.form=whole|peeled", "cucumber.form=sliced"),
    _step("cucumber_to_bowl", "put the cucumber in the bowl",
          "Add the cucumber slices to the bowl.", "cucumber.form=sliced; cucumber.loc=table", "cucumber.loc=bowl"),
    _step("dress_salad", "drizzle oil over the salad",
          "Drizzle olive oil over the salad.", "bowl.loc=table", "bowl.marks=oil"),
    _step("toss_salad", "toss the salad",
          "Toss everything in the bowl together.", "bowl.loc=table", "bowl.marks=stirred"),
    _step("slice_bread", "slice the bread",
          "Cut slices from the loaf of bread.", "bread.form=whole", "bread.form=sliced"),
    _step("toast_bread", "toast the bread",
          "Toast the bread slices until golden.", "bread.form=sliced; bread.temp=cold; bread.loc=table", "bread.temp=hot"),
    _step("bread_to_plate", "put the bread on the plate",
          "Put the bread slices on the plate.", "bread.form=sliced; bread.loc=table; plate.loc=table", "bread.loc=plate"),
    _step("butter_bread", "butter the bread",
          "Spread butter on the bread.", "bread.form=sliced", "bread.marks=butter"),
    _step("slice_cheese", "slice the cheese",
          "Cut the block of cheese into slices.", "cheese.form=whole", "cheese.form=sliced"),
    _step("cheese_to_plate", "put the cheese on the plate",
          "Lay the cheese slices on the plate.", "cheese.form=sliced; cheese.loc=table; plate.loc=table", "cheese.loc=plate"),
    # cooking
    _step("fill_pot", "fill the pot with water",
          "Fill the pot with water from the tap.", "pot.level=0; pot.temp=cold", "pot.fill=water; pot.level=2"),
    _step("pot_to_stove", "put the pot on the stove",
          "Put the pot on the stove burner.", "pot.loc=table", "pot.loc=stove"),
    _step("boil_pot", "bring the pot to a boil",
          "Turn on the burner and bring the water to a boil.", "pot.loc=stove; pot.level=2; pot.temp=cold", "pot.temp=hot"),
    _step("egg_to_pot", "put the egg in the pot",
          "Lower the egg into the boiling water.", "egg.loc=table; egg.form=whole; pot.temp=hot", "egg.loc=pot"),
    _step("egg_to_bowl", "take the egg out of the pot",
          "Lift the boiled egg out of the pot into a bowl.", "egg.loc=pot", "egg.loc=bowl; egg.temp=hot"),
    _step("peel_egg", "peel the egg",
          "Peel the shell off the boiled egg.", "egg.form=whole; egg.temp=hot", "egg.form=peeled"),
    _step("salt_egg", "sprinkle salt on the egg",
          "Sprinkle a pinch of salt over the egg.", "egg.form=peeled|cracked", "egg.marks=salt"),
    _step("pan_to_stove", "put the pan on the stove",
          "Put the frying pan on the stove burner.", "pan.loc=table", "pan.loc=stove"),
    _step("heat_pan", "heat the pan",
          "Turn on the burner under the pan.", "pan.loc=stove; pan.temp=cold", "pan.temp=hot"),
    _step("oil_pan", "pour oil into the pan",
          "Pour a little oil into the pan.", "pan.loc=stove", "pan.marks=oil"),
    _step("crack_egg", "crack the egg into the pan",
          "Crack the egg into the hot pan.", "egg.form=whole; egg.loc=table; pan.temp=hot", "egg.form=cracked; egg.loc=pan"),
    _step("flip_egg", "flip the egg",
          "Flip the frying egg over.", "egg.form=cracked; egg.loc=pan", "egg.marks=flipped"),
    _step("egg_to_plate", "put the egg on the plate",
          "Slide the fried egg onto the plate.", "egg.loc=pan; plate.loc=table", "egg.loc=plate"),
    _step("peel_potato", "peel the potato",
          "Peel the brown skin off the potato.", "potato.form=whole", "potato.form=peeled"),
    _step("dice_potato", "dice the potato",
          "Chop the potato into cubes.", "potato.form=whole|peeled", "potato.form=diced"),
    _step("potato_to_pot", "put the potato in the pot",
          "Put the potato into the boiling pot.", "potato.loc=table; pot.temp=hot", "potato.loc=pot"),
    _step("drain_pot", "drain the pot",
          "Pour the cooking water out of the pot in the sink.", "pot.level=2; pot.temp=hot",
          "pot.level=0; pot.fill=none; pot.loc=sink"),
    _step("potato_to_bowl", "put the potato in the bowl",
          "Move the cooked potato from the pot to a bowl.", "potato.loc=pot; pot.level=0", "potato.loc=bowl; potato.temp=hot"),
    _step("mash_potato", "mash the potato",
          "Mash the cooked potato until smooth.", "potato.loc=bowl; potato.form=peeled|diced", "potato.form=mashed"),
    _step("butter_bowl", "add butter to the bowl",
          "Add a knob of butter to the bowl.", "bowl.loc=table", "bowl.marks=butter"),
    _step("pasta_to_pot", "put the pasta in the pot",
          "Put the dry pasta into the boiling water.", "pasta.loc=table; pot.temp=hot", "pasta.loc=pot; pasta.temp=hot"),
    _step("pasta_to_plate", "put the pasta on the plate",
          "Serve the drained pasta on the plate.", "pasta.loc=pot; pot.level=0; plate.loc=table", "pasta.loc=plate"),
    _step("stir_pot", "stir the pot",
          "Stir what is cooking in the pot.", "pot.temp=hot; pot.level=2", "pot.marks=stirred"),
    _step("peel_carrot", "peel the carrot",
          "Peel the carrot.", "carrot.form=whole", "carrot.form=peeled"),
    _step("slice_carrot", "slice the carrot",
          "Cut the carrot into round slices.", "carrot.form=whole|peeled", "carrot.form=sliced"),
    _step("carrot_to_pot", "put the carrot in the pot",
          "Add the carrot slices to the pot.", "carrot.form=sliced; carrot.loc=table; pot.temp=hot", "carrot.loc=pot"),
    # fruit and lemonade
    _step("peel_banana", "peel the banana",
          "Peel the yellow skin off the banana.", "banana.form=whole", "banana.form=peeled"),
    _step("slice_banana", "slice the banana",
          "Cut the peeled banana into rounds.", "banana.form=peeled", "banana.form=sliced"),
    _step("banana_to_bowl", "put the banana in the bowl",
          "Add the banana slices to the bowl.", "banana.form=sliced; banana.loc=table", "banana.loc=bowl"),
    _step("peel_apple", "peel the apple",
          "Peel the red skin off the apple.", "apple.form=whole", "apple.form=peeled"),
    _step("slice_apple", "slice the apple",
          "Cut the apple into wedges.", "apple.form=whole|peeled", "apple.form=sliced"),
    _step("dice_apple", "dice the apple",
          "Chop the apple into small cubes.", "apple.form=whole|peeled", "apple.form=diced"),
    _step("apple_to_bowl", "put the apple in the bowl",
          "Add the cut apple to the bowl.", "apple.form=sliced|diced; apple.loc=table", "apple.loc=bowl"),
    _step("slice_lemon", "slice the lemon",
          "Cut the lemon in half.", "lemon.form=whole", "lemon.form=sliced"),
    _step("squeeze_lemon", "squeeze the lemon into the jug",
          "Squeeze the lemon halves over the jug.", "lemon.form=sliced", "lemon.form=squeezed; jug.marks=juice"),
    _step("fill_jug", "fill the jug with water",
          "Fill the jug with cold water.", "jug.level=0", "jug.fill=water; jug.level=2"),
    _step("sugar_jug", "add sugar to the jug",
          "Spoon sugar from the sugar bowl into the jug.", "sugar.level=2", "jug.marks=sugar; sugar.level=1"),
    _step("stir_jug", "stir the jug",
          "Stir the drink in the jug.", "jug.level=2", "jug.marks=stirred"),
    _step("pour_jug", "pour the lemonade into the cup",
          "Pour lemonade from the jug into the cup.", "jug.fill=lemonade; cup.loc=table; cup.level=0",
          "cup.fill=lemonade; cup.level=2; jug.level=1"),
)
STEP_INDEX: dict[str, int] = {s.key: i for i, s in enumerate(STEPS)}
if len(STEP_INDEX) != len(STEPS):
    raise RuntimeError("duplicate step keys in the tabletop world")


def initial_state(objects: set[str], overrides: dict[str, dict] | None = None) -> State:
    overrides = overrides or {}
    return {name: ObjectState(**{**OBJECT_DEFAULTS[name], **overrides.get(name, {})}) for name in sorted(objects)}


def _settle(state: State) -> State:
    """What the world does by itself after a step: water with a tea bag in it turns to tea,
    water with coffee in it to coffee, water with lemon juice to lemonade."""
    for name, obj in state.items():
        if obj.fill != "water":
            continue
        if any(o.loc == name for n, o in state.items() if n == "teabag"):
            state[name] = replace(obj, fill="tea")
        elif "coffee" in obj.marks:
            state[name] = replace(obj, fill="coffee")
        elif "juice" in obj.marks:
            state[name] = replace(obj, fill="lemonade")
    return state


class PreconditionError(ValueError):
    """A step was applied to a state that does not satisfy its preconditions."""


def apply(state: State, step: Step) -> State:
    """The state after `step`. Raises PreconditionError when `step` cannot happen in `state`."""
    failed = [c for c in step.pre if not c.holds(state)]
    if failed:
        terms = ", ".join(f"{c.obj}.{c.attr} in {c.values} (is {getattr(state[c.obj], c.attr)!r})" for c in failed)
        raise PreconditionError(f"step {step.key!r} needs {terms}")
    new = dict(state)
    for c in step.post:
        obj = new[c.obj]
        value = obj.marks | {c.values[0]} if c.attr == "marks" else c.values[0]
        new[c.obj] = replace(obj, **{c.attr: value})
    return _settle(new)


_LOC_PHRASE = {"shelf": "on the shelf", "table": "on the table", "sink": "in the sink", "stove": "on the stove"}
_CLEAN_PHRASE = {"dirty": "dirty", "soapy": "covered in soap", "wet": "clean and wet", "clean": "clean and dry"}
_FORM_PHRASE = {"torn": "torn into pieces", "cracked": "cracked open", "squeezed": "squeezed out"}
NOUNS = {"teabag": "tea bag", "jar": "coffee jar", "milk": "milk carton", "sugar": "sugar bowl"}


def noun(obj: str) -> str:
    return NOUNS.get(obj, obj)


def sentence(c: Condition) -> str:
    """A state sentence ("The tomato is sliced.") for one condition; alternatives joined by "or"."""
    def phrase(value) -> str:
        if c.attr == "loc":
            return _LOC_PHRASE.get(value, f"in the {noun(value)}" if value in ("cup", "bowl", "pot", "pan", "jug") else f"on the {noun(value)}")
        if c.attr == "level":
            return ("empty", "half full", "full")[value]
        if c.attr == "fill":
            return f"holding {value}" if value else "empty"
        if c.attr == "clean":
            return _CLEAN_PHRASE[value]
        if c.attr == "form":
            return _FORM_PHRASE.get(value, value)
        return str(value)  # temp, lid

    if c.attr == "marks":
        return f"The {noun(c.obj)} has {c.values[0]} on it." if c.values[0] not in ("stirred", "flipped") \
            else f"The {noun(c.obj)} has been {c.values[0]}."
    return f"The {noun(c.obj)} is {' or '.join(phrase(v) for v in c.values)}."


def before_after(step: Step) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """SCHEMA-style state sentences: the preconditions, then what the effects make true."""
    before = tuple(sentence(c) for c in step.pre)
    after = tuple(sentence(c) for c in step.post)
    return before, after
