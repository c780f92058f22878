"""Train the example model and snapshot its baseline, as a data scientist would.

    python ../train.py          # from examples/flask_app or examples/fastapi_app

Writes model.pkl and baseline.json into the current directory: the Boxkite
tutorial's model (scikit-learn's diabetes data, linear regression).
"""

import pickle

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split

from boxkite_middleware import Baseline


def main() -> None:
    data = load_diabetes(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, random_state=0
    )
    model = LinearRegression().fit(x_train.to_numpy(), y_train)
    print(f"R^2 on held-out data: {model.score(x_test.to_numpy(), y_test):.2f}")
    with open("model.pkl", "wb") as f:
        pickle.dump(model, f)

    # The baseline: the training features and the model's predictions on them.
    baseline = Baseline.from_training(x_train, model.predict(x_train.to_numpy()))
    baseline.save("baseline.json")
    print(f"baseline.json: {len(baseline.features)} features, outputs {baseline.output_names}")


if __name__ == "__main__":
    main()
