"""Generate the tutorial notebooks of issue 7, and optionally execute them.

    .venv/bin/python scripts/make_notebooks.py            # write, no outputs
    .venv/bin/python scripts/make_notebooks.py --execute  # write, run, store outputs
    .venv/bin/python scripts/make_notebooks.py --prose    # new markdown, keep outputs
    .venv/bin/python scripts/make_notebooks.py --execute cnn   # just one notebook

`--execute` runs each notebook in a fresh kernel with a fresh, empty
NBKERAS_HOME (so `%models` and the registry show only that notebook's runs),
TF_CPP_MIN_LOG_LEVEL=3 and PYTHONHASHSEED=0, from the notebooks folder, and
stores the outputs: they are the rendered docs on GitHub. CI re-runs them
with `pytest --nbval-lax`, which compares only the cells that start with
`# NBVAL_CHECK_OUTPUT`; those print only things that do not depend on the
machine (shapes, sorted keys, thresholds with a margin).
"""
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat as nbf

OUT = Path(__file__).resolve().parent.parent / "notebooks"
CHECK = "# NBVAL_CHECK_OUTPUT\n"
BOOKS = {}


def nb(cells):
    book = nbf.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        src = src.strip("\n")
        book.cells.append(nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src))
    return book


def save(name, cells):
    book = nb(cells)
    stem = name.removesuffix(".ipynb").replace("_", "-")
    for i, cell in enumerate(book.cells):
        cell.id = f"{stem}-{i:02d}"   # stable ids: regenerating gives no spurious diff
    BOOKS[name] = book


LOAD_EXT = ("code", "%load_ext nbkeras")

LOAD_DIGITS = '''
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
x = (digits.images / 16.0).astype("float32")   # 1,797 images of 8x8 pixels, scaled to 0-1
y = digits.target                               # the digit shown, 0-9

x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
x_train, x_val, y_train, y_val = train_test_split(x_train, y_train, test_size=0.2, random_state=0, stratify=y_train)
print("train", x_train.shape, "validation", x_val.shape, "test", x_test.shape)
'''

# --------------------------------------------------------------------------
save("quickstart.ipynb", [
("md", """
# nbkeras quickstart: the classic MNIST workflow, on scikit-learn's digits

This notebook walks through the whole Keras workflow with nbkeras: load the
data, describe a model in a few lines, train it while watching a live panel,
evaluate it on held-out data, look at its predictions, and list what was
trained.

The data is scikit-learn's `load_digits`: 1,797 handwritten digits of 8×8
pixels. It is a small cousin of MNIST (70,000 digits of 28×28) that ships with
scikit-learn, so nothing is downloaded and every step runs in seconds on a
laptop CPU.

First, load the extension. It registers the magics `%%model`, `%fit`,
`%evaluate`, `%predict`, `%models` and `%export`. Loading it is cheap: Keras
itself is imported only when the first model is built.
"""),
LOAD_EXT,
("md", """
## The data

Each image is an 8×8 array of pixel intensities from 0 (white) to 16 (black).
Dividing by 16 scales them to 0–1: networks train best when their inputs are
small numbers of similar size, because the initial weights are chosen for
inputs of that scale.

We then split the samples three ways:

- a **test** set (20%) that the model never sees until the very end, to
  measure how it does on new data;
- a **validation** set (20% of the rest), which the model does not train on
  either, but which we look at *during* training to see whether it still
  generalises or has started to memorise the training samples (overfitting);
- the **training** set: what the weights are fitted to.

`stratify=` keeps the same share of each digit in every part, and
`random_state=0` makes the split the same on every run.
"""),
("code", CHECK + LOAD_DIGITS + '''print("pixel range", x.min(), "to", x.max(), "| classes", np.unique(y))
'''),
("md", """
## The model

A `%%model` cell describes the network, one layer per line:

- `input 8x8` is the shape of *one* sample (the batch dimension is implicit);
- `flatten` turns the 8×8 image into a vector of 64 numbers, which is what a
  dense layer takes;
- `dense 64 relu` is a fully connected layer of 64 units with the ReLU
  activation (max(0, x)), which lets the network learn non-linear patterns;
- `dropout 0.2` sets a random 20% of those 64 values to zero at each training
  step (and does nothing at prediction time), so the network cannot rely on
  any single unit: a cheap guard against overfitting;
- `dense 10 softmax` gives one output per digit; softmax turns them into
  probabilities that add up to 1.

`optimizer adam lr=3e-3` picks the Adam optimizer with a learning rate of
0.003 and `metrics accuracy` asks Keras to report the share of correct
predictions. We give no `loss`: nbkeras picks one from the output layer (a
softmax output gets a categorical cross-entropy, in its sparse or one-hot form
depending on the labels `%fit` sees) and says so in one line. `--seed 0` makes
the initial weights the same on every run.

The cell binds a real, compiled `keras.Model` to the Python name `digits_mlp`
and shows its layers, output shapes and parameter counts.
"""),
("code", """
%%model digits_mlp --seed 0
input 8x8
flatten
dense 64 relu
dropout 0.2
dense 10 softmax
optimizer adam lr=3e-3
metrics accuracy
"""),
("md", """
`digits_mlp` is an ordinary Keras model: everything Keras offers
(`digits_mlp.summary()`, `digits_mlp.predict(...)`, `digits_mlp.save(...)`)
works on it. The 4,810 parameters are 64×64 + 64 weights and biases in the
hidden layer and 64×10 + 10 in the output layer.
"""),
("code", CHECK + """
print(type(digits_mlp).__name__, digits_mlp.count_params(), digits_mlp.input_shape, digits_mlp.output_shape)
"""),
("md", """
## Training

`%fit MODEL X Y` trains the model on the arrays you name. The options used here:

- `--val x_val y_val`: the validation data, evaluated after every epoch
  (one pass over the training set);
- `--epochs 40`: train for at most 40 epochs;
- `--batch-size 32`: update the weights after every 32 samples;
- `--early-stop 5`: stop when the validation loss has not improved for 5
  epochs in a row, and put back the weights of the best epoch; this is why we
  can ask for "at most 40" without worrying about overfitting;
- `--seed 0`: the same shuffling of the samples, and the same dropout, on
  every run.

While it trains, a live panel shows the progress of the epoch and of the whole
run, the current and the best value of each metric, and the learning curves.
When training ends, the panel is replaced by a static record that stays in
the notebook: a summary line, a table of the metrics and the curves (that is
what you see below). `%fit` prints a line when it adapts something to your
data (here, the loss is settled as the sparse cross-entropy because `y_train`
holds class indices, not one-hot rows), and returns Keras's `History`.
"""),
("code", """
history = %fit digits_mlp x_train y_train --val x_val y_val --epochs 40 --batch-size 32 --early-stop 5 --seed 0
"""),
("md", """
`history.history` holds one list per metric, one value per epoch: the training
`loss` and `accuracy`, and their validation counterparts prefixed `val_`.
"""),
("code", CHECK + """
print(sorted(history.history))
print("at most 40 epochs:", len(history.history["loss"]) <= 40)
print("best validation accuracy above 0.9:", max(history.history["val_accuracy"]) > 0.9)
"""),
("md", """
## Evaluation on the test set

The validation set guided training (early stopping chose the epoch with the
best validation loss), so it is no longer an unbiased judge. The test set is:
`%evaluate` reports the compiled loss and metrics on it, and for a classifier
adds, per class:

- **precision**: of the samples predicted as this digit, the share that really
  are this digit;
- **recall**: of the samples of this digit, the share the model found;
- **F1**: the harmonic mean of the two, high only when both are;
- **support**: how many test samples have this digit.

The macro average treats every class alike; the weighted average weights each
class by its support. Below the table, the **confusion matrix** counts every
(true digit, predicted digit) pair: rows are the true digit, columns the
predicted one, so the correct answers lie on the diagonal and each mistake is
an off-diagonal cell that tells which digit was taken for which.

`%evaluate` returns all of it as a dict, and records the result in the run
registry next to the training run.
"""),
("code", "results = %evaluate digits_mlp x_test y_test"),
("code", CHECK + """
print("test accuracy above 0.9:", results["accuracy"] > 0.9)
print("classes in the report:", len(results.per_class), "| confusion matrix:", results.confusion.shape)
"""),
("md", """
## Predictions

`%predict MODEL X` returns what `model.predict` returns, here one row of 10
probabilities per image; `--classes` returns the most likely digit instead.
"""),
("code", """
predicted = %predict digits_mlp x_test --classes
print("predicted:", predicted[:12])
print("true:     ", y_test[:12])
"""),
("md", """
`--show 16` draws the first 16 test images with the predicted digit above
each; `--labels y_test` adds the true one, and a wrong prediction is written
in red. Looking at the mistakes is often the quickest way to understand a
model (some of these digits are hard for a person too).
"""),
("code", "%predict digits_mlp x_test --show 16 --labels y_test"),
("md", """
## What was trained

Every model version and training run is recorded in a small SQLite database
(in Jupyter's data folder, or in `$NBKERAS_HOME`) that survives kernel
restarts. `%models` lists the models and their runs, newest first, with the
final and best value of the main metric; `%models digits_mlp` shows one
model's versions and runs in detail. In JupyterLab the nbkeras sidebar (the
icon in the left bar) shows the same list, live.
"""),
("code", "%models"),
("md", """
Where next: `cnn.ipynb` (a convolutional network), `functional.ipynb`
(several inputs and outputs), `regression.ipynb`, `binary_metrics.ipynb`,
`callbacks.ipynb` (checkpoints, learning rates, logs, resuming) and
`tf_data.ipynb` (input pipelines).
"""),
])

# --------------------------------------------------------------------------
save("cnn.ipynb", [
("md", """
# A small convolutional network on the digits

A dense layer connects every pixel to every unit, so it has to learn a stroke
separately for each place it can appear. A **convolution** slides a small
filter (here 3×3 pixels) over the image and applies the same weights at every
position: it learns strokes, edges and corners once and finds them anywhere,
with far fewer weights. Stacking convolutions lets later layers combine simple
shapes into parts of digits.

Convolutions work on images with a channel axis: here the digits become
8×8×1 arrays (height, width, one grey channel). The `--code` option of
`%%model` also prints the plain Keras code that the spec stands for: handy in
a tutorial, to learn the Keras API, or to leave nbkeras behind.
"""),
LOAD_EXT,
("md", """
The same data and split as in the quickstart, with a channel axis added by
`[..., None]` (8×8 becomes 8×8×1).
"""),
("code", CHECK + LOAD_DIGITS.replace(
    'x = (digits.images / 16.0).astype("float32")   # 1,797 images of 8x8 pixels, scaled to 0-1',
    'x = (digits.images / 16.0).astype("float32")[..., None]   # 1,797 images of 8x8x1, scaled to 0-1')),
("md", """
The spec, line by line:

- `conv2d 16 3 relu same`: 16 filters of 3×3 with ReLU; `same` padding keeps
  the output at 8×8 (each filter gives one 8×8 "feature map");
- `maxpool 2`: keeps the largest value of each 2×2 block, halving height and
  width (8×8 to 4×4), which makes the features a little insensitive to small
  shifts and cuts the work of the next layer;
- `conv2d 32 3 relu same`: 32 filters that combine the 16 maps below;
- `flatten`, `dropout 0.25` and `dense 10 softmax`: classify, as in the
  quickstart.

This time the loss is given explicitly: `sparse_categorical_crossentropy` is
the cross-entropy for labels given as class indices (0–9) rather than one-hot
rows.
"""),
("code", """
%%model cnn --seed 0 --code
input 8x8x1
conv2d 16 3 relu same
maxpool 2
conv2d 32 3 relu same
flatten
dropout 0.25
dense 10 softmax
loss sparse_categorical_crossentropy
metrics accuracy
"""),
("md", """
The printed code builds the same model with Keras alone: `keras.Input` for
the input, one layer call per line (Keras's functional API), `keras.Model`,
then `model.compile` with the training settings. Copy it into a script and
you get the same model without nbkeras.
"""),
("code", CHECK + """
print(cnn.output_shape, [layer.__class__.__name__ for layer in cnn.layers])
"""),
("md", """
Training works as for any model. `--early-stop 3` watches the validation
loss and keeps the best weights.
"""),
("code", "history = %fit cnn x_train y_train --val x_val y_val --epochs 15 --early-stop 3 --seed 0"),
("md", """
`--no-plots` leaves out the confusion matrix and keeps the per-class table.
"""),
("code", "r = %evaluate cnn x_test y_test --no-plots"),
("code", CHECK + """
print("test accuracy above 0.9:", r["accuracy"] > 0.9)
"""),
("code", "%predict cnn x_test --show 8 --labels y_test"),
])

# --------------------------------------------------------------------------
save("functional.ipynb", [
("md", """
# Several inputs and outputs: a functional graph

Models are not always a single stack of layers. This one takes **two inputs**
and gives **two outputs**:

- inputs: the 8×8 image, and four "side features" (the amount of ink in each
  quarter of the image), as a separate vector;
- outputs: the digit (a class, 10 probabilities) and how much ink the whole
  image holds (a number).

Predicting the ink is easy and not very useful by itself; it stands for any
second task a model can learn alongside the main one from the same features
(multi-task learning). The point here is the form: how to wire a graph, give
each output its own loss and metrics, and feed and evaluate such a model.
"""),
LOAD_EXT,
("md", """
The data: the image with a channel axis, the four quadrant features, the
digit and the ink. The ink target is standardised (the mean ink of the image,
minus the average over all images, divided by their standard deviation), so
that its loss has the same scale as the class loss and the weights below mean
what they say; a value of 1 means "one standard deviation more ink than
usual". All five arrays are split together with the same shuffled indices,
so sample *i* stays aligned in all of them.
"""),
("code", CHECK + """
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
img = (digits.images / 16.0).astype("float32")[..., None]   # (1797, 8, 8, 1)
pixels = img[..., 0]
# side features: the mean ink in each quarter of the image
meta = np.stack([pixels[:, :4, :4].mean((1, 2)), pixels[:, :4, 4:].mean((1, 2)),
                 pixels[:, 4:, :4].mean((1, 2)), pixels[:, 4:, 4:].mean((1, 2))], axis=1).astype("float32")
digit = digits.target                          # output 1: the class
mean_ink = pixels.mean((1, 2))
ink = ((mean_ink - mean_ink.mean()) / mean_ink.std()).astype("float32")   # output 2: a number

(img_tr, img_te, meta_tr, meta_te, digit_tr, digit_te, ink_tr, ink_te) = train_test_split(
    img, meta, digit, ink, test_size=0.2, random_state=0)
print(img_tr.shape, meta_tr.shape, digit_tr.shape, ink_tr.shape)
"""),
("md", """
## The graph

`NAME = ...` binds a statement's output to a name; a layer with `(SRC, ...)`
after it takes those named tensors as input instead of the line above:

- `img = input 8x8x1` and `meta = input 4` are the two inputs;
- `x = conv2d 8 3 relu same (img)` reads the image, `x = flatten` the
  line above;
- `y = concat (x, meta)` joins the image features and the side features
  into one vector;
- `digit = dense 10 softmax (y)` and `value = dense 1 (y)` are two heads on
  the same shared features; these names become the Keras layer names;
- `outputs digit, value` declares the outputs, in this order.

The training settings are given **per output name**: the digit is a class
(sparse cross-entropy, accuracy) and the value a number (mean squared error,
mean absolute error). Keras minimises one total loss, the weighted sum
`1.0 × digit loss + 0.5 × value loss`: `loss_weights` says how much each task
counts. Here the class matters most and the ink is a helper task.
"""),
("code", """
%%model two_heads --seed 0
img = input 8x8x1
meta = input 4
x = conv2d 8 3 relu same (img)
x = flatten
y = concat (x, meta)
y = dense 64 relu
digit = dense 10 softmax (y)
value = dense 1 (y)
outputs digit, value
loss digit=sparse_categorical_crossentropy value=mse
loss_weights digit=1.0 value=0.5
metrics digit=accuracy value=mae
"""),
("code", CHECK + """
print([tuple(t.shape) for t in two_heads.inputs], [tuple(t.shape) for t in two_heads.outputs])
print(two_heads.output_names)
"""),
("md", """
## Training

Inputs and targets are given as lists, in the order of the inputs and of
`outputs`, or as dicts keyed by the input and output names. Here the inputs
are a list and the targets a dict. `--val-split 0.2` holds out the last 20%
of the training arrays for validation (instead of passing `--val`).

The panel and the history now have one loss per output (`digit_loss`,
`value_loss`), their weighted total (`loss`), and each output's metric
(`digit_accuracy`, `value_mae`).
"""),
("code", """
history = %fit two_heads [img_tr, meta_tr] {'digit': digit_tr, 'value': ink_tr} --epochs 15 --val-split 0.2 --seed 0
"""),
("code", CHECK + """
print(sorted(history.history))
"""),
("md", """
## Evaluation and predictions

`%evaluate` takes the same forms (here two lists). It shows the compiled loss
and metrics, then a report for each output: per-class precision, recall and F1
with the confusion matrix for the digit, RMSE, MAE and R² for the ink. The
returned dict names each figure after its output (`digit_macro_f1`,
`value_r2`).
"""),
("code", """
r = %evaluate two_heads [img_te, meta_te] [digit_te, ink_te]
"""),
("code", CHECK + """
print("digit accuracy above 0.85:", r["digit_accuracy"] > 0.85)
# always predicting the average ink would give a mean absolute error of about 0.8
print("ink error below 0.5:", r["value_mae"] < 0.5)
"""),
("md", """
`%predict` returns one array per output, in the order of `outputs`.
"""),
("code", CHECK + """
digit_prob, value_pred = %predict two_heads [img_te, meta_te]
print(digit_prob.shape, value_pred.shape)
"""),
])

# --------------------------------------------------------------------------
save("regression.ipynb", [
("md", """
# Regression on the diabetes data

In **regression** the model predicts a number rather than a class.
scikit-learn's diabetes data has 442 patients, 10 measurements each (age, sex,
body-mass index, blood pressure and six blood serum values), and the target is
a number measuring how far the disease progressed a year later (from 25 to
346). We train a small network to predict it and measure how far off it is.
"""),
LOAD_EXT,
("md", """
## Data

We keep 20% of the patients as a test set. The inputs are **standardised**:
from each column we subtract its mean and divide by its standard deviation,
so every input has mean 0 and spread 1 and none dominates just because of its
units. The means and deviations are computed on the training set only, so no
information about the test set leaks into training.

The target is standardised too (`y_train_s`): a network's output starts near
0 with a spread around 1, so a target of the same scale trains faster. A
prediction is turned back into disease units with `pred * y_std + y_mean`.
"""),
("code", CHECK + """
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

x, y = load_diabetes(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x.astype("float32"), y.astype("float32"), test_size=0.2, random_state=0)
mean, std = x_train.mean(0), x_train.std(0)
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
y_mean, y_std = y_train.mean(), y_train.std()
y_train_s, y_test_s = (y_train - y_mean) / y_std, (y_test - y_mean) / y_std
print(x_train.shape, x_test.shape, "| training inputs: mean 0:", bool(np.allclose(x_train.mean(0), 0, atol=1e-4)))
"""),
("md", """
## Model

Two small hidden layers and **one linear output unit** (no activation: the
output can be any number). The loss is the mean squared error (`mse`), the
usual loss for regression; the mean absolute error (`mae`) is reported as a
metric because it reads in the target's own units (here, standard deviations
of the target).
"""),
("code", """
%%model diabetes --seed 0
input 10
dense 32 relu
dense 16 relu
dense 1
loss mse
metrics mae
"""),
("md", """
With only 353 training samples a network overfits quickly, so we hold out 20%
of them for validation (`--val-split 0.2`) and stop as soon as the validation
loss stops improving (`--early-stop 5`, which also restores the best weights).
"""),
("code", "history = %fit diabetes x_train y_train_s --epochs 60 --val-split 0.2 --early-stop 5 --seed 0"),
("md", """
## Evaluation

For a regression model `%evaluate` adds, to the compiled loss and metrics:

- **RMSE**, the root of the mean squared error: a typical size of an error,
  in the target's units; large errors weigh heavily;
- **MAE**, the mean absolute error: the average size of an error, less
  sensitive to a few large misses;
- **R²**, the share of the target's variance the model explains: 1 is
  perfect, 0 is no better than always predicting the mean, below 0 is worse.
"""),
("code", """
r = %evaluate diabetes x_test y_test_s
# the table is in standard deviations of the target; back in its own units:
print(f"RMSE {r['rmse'] * y_std:.1f}  MAE {r['mae'] * y_std:.1f}  (in disease-progression units)")
"""),
("code", CHECK + """
print(sorted(k for k in r if k in ("rmse", "mae", "r2")))
print("R² above 0.2:", r["r2"] > 0.2, "| RMSE below 1 (better than the mean):", r["rmse"] < 1)
"""),
("md", """
An R² around 0.3–0.5 is typical for this data set, even for elaborate
models: ten measurements explain only part of how the disease progresses. Predictions in
disease units:
"""),
("code", """
pred = %predict diabetes x_test
print("predicted:", np.round(pred[:8, 0] * y_std + y_mean))
print("true:     ", y_test[:8])
"""),
])

# --------------------------------------------------------------------------
save("binary_metrics.ipynb", [
("md", """
# Binary classification, imbalance, and the metrics that tell the truth

The breast-cancer data: 569 tumours, 30 measurements of the cell nuclei each,
and the diagnosis, malignant or benign. We make the training set
**imbalanced** on purpose (few malignant cases), as real screening data is,
to show why accuracy alone misleads and what class weights do.

With 90% benign cases, a model that always answers "benign" is 90% accurate
and useless. These metrics look at the malignant class (the *positive* class)
instead:

- **precision**: of the tumours predicted malignant, the share that are
  malignant (a low precision means many false alarms);
- **recall** (sensitivity): of the malignant tumours, the share the model
  finds (a low recall means missed cancers, usually the worse error here);
- **F1**: the harmonic mean of precision and recall, high only when both are;
- **AUC** (area under the ROC curve): the chance that a random malignant case
  gets a higher score than a random benign one. Precision, recall and F1
  depend on the threshold (0.5) at which a score becomes "malignant"; AUC
  looks at the scores themselves, over all thresholds.
"""),
LOAD_EXT,
("md", """
## An imbalanced split

Label 1 is malignant. We split off 30% as a test set with the natural
proportions, then drop about 70% of the malignant cases from the training set
only. Inputs are standardised with the training set's means and deviations.
"""),
("code", CHECK + """
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

x, y = load_breast_cancer(return_X_y=True)
y = (y == 0).astype("float32")          # scikit-learn's 0 is malignant: make malignant 1
x_train, x_test, y_train, y_test = train_test_split(x.astype("float32"), y, test_size=0.3, random_state=0, stratify=y)
rng = np.random.default_rng(0)
keep = (y_train == 0) | (rng.random(len(y_train)) < 0.3)   # keep about 30% of the malignant cases
x_train, y_train = x_train[keep], y_train[keep]
mean, std = x_train.mean(0), x_train.std(0)
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
print("training:", len(y_train), "tumours,", int(y_train.sum()), "malignant")
print("test:    ", len(y_test), "tumours,", int(y_test.sum()), "malignant")
"""),
("md", """
## Model

One sigmoid unit gives the probability of "malignant"; binary cross-entropy is
its loss. Keras computes precision, recall and AUC during training
(`metrics accuracy precision recall auc`).
"""),
("code", """
%%model cancer --seed 0
input 30
dense 16 relu
dense 1 sigmoid
loss binary_crossentropy
metrics accuracy precision recall auc
"""),
("md", """
## Class weights

The loss averages over samples, so with few malignant cases the model can
lower it most by getting the benign ones right. `--class-weight balanced`
multiplies each sample's loss by `n_samples / (n_classes × count of its
class)`, so that each class weighs the same in total: here each malignant
case gets a weight of about 4 and each benign one about 0.6. (To choose the
weights yourself, pass a dict: `--class-weight weights` with
`weights = {0: 1.0, 1: 4.0}`.)
"""),
("code", "history = %fit cancer x_train y_train --epochs 20 --class-weight balanced --val-split 0.2 --seed 0"),
("md", """
For comparison, the same model trained without class weights:
"""),
("code", """
%%model cancer_unweighted --seed 0
input 30
dense 16 relu
dense 1 sigmoid
loss binary_crossentropy
metrics accuracy precision recall auc
"""),
("code", "history_unweighted = %fit cancer_unweighted x_train y_train --epochs 20 --val-split 0.2 --seed 0 --quiet"),
("md", """
## Evaluation

For a binary model `%evaluate` gives the compiled metrics, a per-class report
(class 1 is malignant, so its row holds the precision, recall and F1 of the
malignant class; class 0's row is the same seen from the benign side), the
ROC AUC computed from the scores, and the confusion matrix: the bottom-left
cell counts the malignant tumours predicted benign (missed), the top-right
one the false alarms.
"""),
("code", "r = %evaluate cancer x_test y_test"),
("code", "r_unweighted = %evaluate cancer_unweighted x_test y_test --no-plots"),
("md", """
Side by side, for the malignant class (class 1): accuracy alone hides how
many cancers each model misses; recall shows it. Class weights usually trade
a little precision for recall, which is the right trade when a missed case
costs more than a false alarm.
"""),
("code", """
import pandas as pd

def malignant(result):
    row = result.per_class[1]
    return {"accuracy": result["accuracy"], "precision": row["precision"],
            "recall": row["recall"], "f1": row["f1"], "auc": result["roc_auc"]}

pd.DataFrame({"class weights": malignant(r), "no class weights": malignant(r_unweighted)}).T.round(3)
"""),
("code", CHECK + """
print("recall above 0.8:", r.per_class[1]["recall"] > 0.8, "| F1 above 0.75:", r.per_class[1]["f1"] > 0.75,
      "| AUC above 0.9:", r["roc_auc"] > 0.9)
"""),
])

# --------------------------------------------------------------------------
save("callbacks.ipynb", [
("md", """
# Callbacks: early stopping, checkpoints, learning rates, logs, resuming

Keras **callbacks** are objects whose methods Keras calls during training (at
the end of each epoch, for example) to watch or steer it. nbkeras gives the
common ones a short `%fit` flag each, so you do not have to build them by
hand:

| flag | Keras callback | what it does |
| --- | --- | --- |
| `--early-stop N` | `EarlyStopping` | stop after N epochs without improvement, restore the best weights |
| `--checkpoint PATH` | (an atomic `ModelCheckpoint`) | keep the best model on disk |
| `--reduce-lr N` | `ReduceLROnPlateau` | lower the learning rate after N epochs without improvement |
| `--lr-schedule KIND` | `LearningRateScheduler` | set the learning rate from the epoch number |
| `--tensorboard DIR` | `TensorBoard` | logs for TensorBoard |
| `--csv PATH` | `CSVLogger` | one row of metrics per epoch in a CSV file |

`--monitor METRIC` chooses the metric that early stopping, the checkpoint and
reduce-on-plateau watch (`val_loss` by default when there is validation data,
else `loss`).
"""),
LOAD_EXT,
("md", """
The digits again, and a temporary folder for the files the callbacks write.
"""),
("code", CHECK + LOAD_DIGITS + """
import os, tempfile
workdir = tempfile.mkdtemp()
"""),
("code", """
%%model mlp --seed 0
input 8x8
flatten
dense 32 relu
dense 10 softmax
optimizer adam lr=0.01
metrics accuracy
"""),
("md", """
## Early stopping, the best checkpoint, reduce-on-plateau, logs

One `%fit` with most of the flags (`{workdir}` in a magic's line is replaced
by the Python variable's value):

- `--early-stop 4 --monitor val_loss`: stop when the validation loss has not
  improved for 4 epochs, and restore the weights of the best epoch;
- `--checkpoint {workdir}/best.keras`: each time the validation loss reaches a
  new best, save the whole model there. The file is written under a temporary
  name and then renamed, so a crash never leaves half a file behind;
- `--reduce-lr 2`: when the validation loss has not improved for 2 epochs,
  multiply the learning rate by 0.1 (`--lr-decay F` changes the factor).
  A smaller step often gets past a plateau;
- `--csv` and `--tensorboard`: write the per-epoch metrics for other tools.

When `--reduce-lr` or `--lr-schedule` is used, the history also gets a
`learning_rate` column.
"""),
("code", """
history = %fit mlp x_train y_train --val x_val y_val --epochs 30 --early-stop 4 --monitor val_loss --checkpoint {workdir}/best.keras --reduce-lr 2 --csv {workdir}/log.csv --tensorboard {workdir}/tb --seed 0
"""),
("code", CHECK + """
print(sorted(os.listdir(workdir)))
print(sorted(history.history))
"""),
("md", """
The checkpoint is an ordinary `.keras` file: `keras.saving.load_model` gives
back the model of the best epoch (architecture, weights and optimizer state):
its validation loss is the lowest in the history. Since `--early-stop` also
put the best weights back into `mlp` at the end, the two agree.
"""),
("code", CHECK + """
import keras
best = keras.saving.load_model(f"{workdir}/best.keras")
best_val_loss = best.evaluate(x_val, y_val, verbose=0, return_dict=True)["loss"]
print("checkpoint has the best validation loss:", abs(best_val_loss - min(history.history["val_loss"])) < 1e-3)
print("same predictions as mlp:", bool(np.allclose(best.predict(x_test, verbose=0), mlp.predict(x_test, verbose=0), atol=1e-4)))
"""),
("md", """
The CSV log has one row per epoch; open it with pandas, a spreadsheet, or any
plotting tool.
"""),
("code", """
import pandas as pd
pd.read_csv(f"{workdir}/log.csv").round(4).tail()
"""),
("md", """
The TensorBoard logs are in `{workdir}/tb` (`train/` and `validation/`
event files). To look at them inside the notebook:

```
%load_ext tensorboard
%tensorboard --logdir {workdir}/tb
```
"""),
("md", """
## A learning-rate schedule

A **schedule** sets the learning rate from the epoch number, decided in
advance, where reduce-on-plateau reacts to the metrics (so the two cannot be
combined). Large steps early make fast progress; smaller steps later settle
into a minimum.

- `cosine`: from the optimizer's rate down to 0 along a half cosine, over
  the epochs of the run;
- `exponential`: multiply the rate by `--lr-decay` (default 0.9) every epoch;
- `step`: multiply it by `--lr-decay` (default 0.5) every `--lr-step` epochs
  (default a third of the run).

The rates are always computed from the model's original learning rate, so
running the cell again starts the schedule afresh.
"""),
("code", """
%%model mlp2 --seed 0
input 8x8
flatten
dense 32 relu
dense 10 softmax
optimizer adam lr=0.01
metrics accuracy
"""),
("code", "h = %fit mlp2 x_train y_train --val x_val y_val --epochs 4 --lr-schedule exponential --lr-decay 0.5 --csv {workdir}/mlp2.csv --seed 0"),
("code", CHECK + """
print("learning rate by epoch:", [round(v, 5) for v in h.history["learning_rate"]])
"""),
("md", """
## Resuming

`--resume` continues the model's last run: it trains `--epochs` *more*
epochs, numbered after the ones already done, and the panel's history, the
curves and the epoch count carry on from where they stopped. The other flags
are not remembered: give them again (here the same schedule, which, being
computed from the epoch number, goes on where it was, and the same CSV file,
which `--resume` appends to instead of overwriting).

Use it to train a model a little longer, or to go on after you interrupted a
run (Jupyter's stop button ■, "interrupt the kernel"): an interrupted run ends
after the current batch and keeps its weights.
"""),
("code", "h = %fit mlp2 x_train y_train --val x_val y_val --epochs 3 --resume --lr-schedule exponential --lr-decay 0.5 --csv {workdir}/mlp2.csv"),
("code", CHECK + """
print("this run trained epochs", [e + 1 for e in h.epoch])
print("learning rate by epoch:", [round(v, 5) for v in h.history["learning_rate"]])
print("rows in the CSV log:", len(pd.read_csv(f"{workdir}/mlp2.csv")))
"""),
])

# --------------------------------------------------------------------------
save("tf_data.ipynb", [
("md", """
# A `tf.data` pipeline fed to `%fit`

NumPy arrays are fine when the data fits in memory and needs no work per
sample. When it does not (files read from disk, images decoded and augmented
on the fly), TensorFlow's `tf.data` builds an **input pipeline**: a chain of
steps that produce batches while the model trains. `%fit` takes such a
dataset directly. It yields `(inputs, targets)` pairs, so there is no `Y`
argument, and it decides batching and shuffling itself.

`tf.data` is part of TensorFlow; this notebook needs the TensorFlow backend of
Keras (the default).
"""),
LOAD_EXT,
("code", CHECK + LOAD_DIGITS),
("md", """
## The pipeline

Each step returns a new dataset:

- `from_tensor_slices((x_train, y_train))`: one element per sample, an
  `(image, label)` pair;
- `map(flatten)`: applies a function to every element, here reshaping the
  8×8 image into a vector of 64 (the place for decoding, augmentation or
  normalisation); `num_parallel_calls=AUTOTUNE` runs it on several cores;
- `cache()`: keeps the mapped elements in memory after the first epoch, so
  the work of `map` is done only once (give it a file name to cache on disk);
- `shuffle(1000, seed=0)`: draws elements at random from a buffer of 1,000,
  in a new order every epoch; the buffer holds the whole training set here,
  so this is a full shuffle. It comes after `cache` so that each epoch gets a
  new order;
- `batch(32)`: groups 32 elements into one batch, the unit of a training step;
- `prefetch(AUTOTUNE)`: prepares the next batches while the model trains on
  the current one, so the model never waits for data.

The validation pipeline needs no shuffling or caching.
"""),
("code", """
import tensorflow as tf

def flatten(image, label):
    return tf.reshape(image, [64]), label

train_ds = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .map(flatten, num_parallel_calls=tf.data.AUTOTUNE)
            .cache()
            .shuffle(1000, seed=0)
            .batch(32)
            .prefetch(tf.data.AUTOTUNE))
val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).map(flatten).batch(64)
"""),
("md", """
Nothing has run yet: a dataset is a recipe, run when something iterates over
it (here, `%fit`). Its `element_spec` says what each element will be: a batch
of flat images and a batch of labels, `None` being the batch size (the last
batch of an epoch is smaller).
"""),
("code", CHECK + """
print("batches:", [tuple(spec.shape) for spec in train_ds.element_spec], "| batches per epoch:", len(train_ds))
"""),
("code", """
%%model from_dataset --seed 0
input 64
dense 64 relu
dense 10 softmax
loss sparse_categorical_crossentropy
metrics accuracy
"""),
("md", """
`%fit NAME DATASET` trains on the dataset; `--val` takes a validation
dataset (or arrays). `--batch-size` does not apply: the pipeline batches.
"""),
("code", "history = %fit from_dataset train_ds --val val_ds --epochs 10 --seed 0"),
("code", CHECK + """
print("best validation accuracy above 0.85:", max(history.history["val_accuracy"]) > 0.85)
"""),
("md", """
`%evaluate` and `%predict` take arrays; the test images are flattened the
same way as in the pipeline.
"""),
("code", """
r = %evaluate from_dataset x_test.reshape(-1,64) y_test --no-plots
"""),
("code", CHECK + """
print("test accuracy above 0.85:", r["accuracy"] > 0.85)
"""),
])


# TensorFlow's native start-up lines, written to file descriptor 2 when its
# libraries load (in the cell that first imports Keras) before absl logging
# is initialised, so TF_CPP_MIN_LOG_LEVEL cannot silence them (TF 2.21):
#   WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
#   I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, ...
# They are dropped from the stored outputs (and nothing else is); the fix
# belongs in nbkeras (see the issue-7 report), after which this finds nothing.
TF_STARTUP = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|cuda_blas"
    r"|cpu_feature_guard)\.cc:\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$")


def drop_tf_startup_lines(book):
    """Remove TF_STARTUP lines from stderr outputs; drop outputs left empty."""
    dropped = 0
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                lines = out.text.splitlines(keepends=True)
                rest = [ln for ln in lines if not TF_STARTUP.match(ln.rstrip("\n"))]
                dropped += len(lines) - len(rest)
                if not rest:
                    continue
                out.text = "".join(rest)
            kept.append(out)
        cell.outputs = kept
    return dropped


def execute(book, path):
    """Run `book` in a fresh kernel with a fresh registry; store the outputs."""
    from nbclient import NotebookClient
    home = tempfile.mkdtemp(prefix="nbkeras-home-")
    env = {"NBKERAS_HOME": home, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(book, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in book.cells:
            cell.metadata.pop("execution", None)   # timestamps: diff noise
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def keep_outputs(book, path):
    """Copy the stored outputs of `path` into `book` (for `--prose`).

    Refuses when a code cell changed: its stored outputs would be stale.
    """
    old = nbf.read(path, as_version=4)
    old_code = [c for c in old.cells if c.cell_type == "code"]
    new_code = [c for c in book.cells if c.cell_type == "code"]
    if [c.source for c in old_code] != [c.source for c in new_code]:
        raise SystemExit(f"{path.name}: code cells changed; run with --execute instead")
    for new, stored in zip(new_code, old_code):
        new.outputs, new.execution_count = stored.outputs, stored.execution_count
        new.metadata = {k: v for k, v in stored.metadata.items() if k != "execution"}
    book.metadata = old.metadata


def main(argv):
    """`--execute`: run and store outputs; `--prose`: update only the markdown."""
    run = "--execute" in argv
    only = [a for a in argv if not a.startswith("-")]
    for name, book in BOOKS.items():
        if only and name not in only and name.removesuffix(".ipynb") not in only:
            continue
        path = OUT / name
        if run:
            start = time.perf_counter()
            execute(book, path)
            dropped = drop_tf_startup_lines(book)
            print(f"{name}: executed in {time.perf_counter() - start:.0f}s"
                  f"{f' (dropped {dropped} TensorFlow start-up lines from stderr)' if dropped else ''}")
        elif "--prose" in argv:
            keep_outputs(book, path)
        nbf.write(book, path)
    print("written to", OUT)


if __name__ == "__main__":
    main(sys.argv[1:])
